/*
 * The gRPC methods whose messages tsctl's startup snapshot holds ready-generated (warmClient in
 * ../../client.ts): those that run, create, start, stop, kill, rm, exec, wait, ps, inspect, logs,
 * images and version call (run's default network is a CNI one: Attach and Detach). Every other method's messages are generated on their first use, which
 * costs that command a fraction of a millisecond per message; holding them all in the snapshot
 * would cost every command more (a snapshot is paid for by its size at each start).
 */
export const HOT_METHODS: readonly string[] = [
  'Version.Version',
  'Containers.Create',
  'Containers.Get',
  'Containers.List',
  'Containers.Update',
  'Containers.Delete',
  'Tasks.Create',
  'Tasks.Start',
  'Tasks.Wait',
  'Tasks.Delete',
  'Tasks.DeleteProcess',
  'Tasks.Exec',
  'Tasks.Get',
  'Tasks.Kill',
  'Tasks.List',
  'Images.Get',
  'Images.List',
  'Content.Read',
  'Leases.Create',
  'Leases.Delete',
  'Snapshots.Prepare',
  'Snapshots.Mounts',
  'Snapshots.Remove',
  'Snapshots.Usage',
  'Networks.Attach',
  'Networks.Detach',
  'Networks.ListAttachments',
];
