/*
 * Which runtime a container's task runs with: containerd's runc options (binary_name, root,
 * systemd_cgroup, no_pivot_root, no_new_keyring) from the task's options first, then the
 * container's, else tsrund's default.
 */
import type { RuntimeChoice } from '../../shim/api';
import { bareTypeUrl, decode, type AnyValue } from '../proto/index';
import type { RuncOptions } from '../proto/messages';
import type { ContainerRecord } from '../store/db';

const RUNC_OPTIONS = 'containerd.runc.v1.Options';

function runcOptions(any: AnyValue | null | undefined): RuncOptions | undefined {
  if (any === null || any === undefined || any.value.length === 0) return undefined;
  if (bareTypeUrl(any.typeUrl) !== RUNC_OPTIONS) return undefined;
  return decode<RuncOptions>(RUNC_OPTIONS, any.value);
}

/** The runtime a container's task uses: runc option binary_name (task options first), else the default. */
export function chooseRuntime(c: ContainerRecord, taskOptions: AnyValue | null, defaultRuntime: string): {
  runtime: RuntimeChoice;
  noPivot: boolean;
  noNewKeyring: boolean;
} {
  const fromContainer = runcOptions(c.runtime.options);
  const fromTask = runcOptions(taskOptions);
  const pick = <K extends keyof RuncOptions>(k: K): RuncOptions[K] | undefined => {
    const t = fromTask?.[k];
    if (t !== undefined && t !== '' && t !== false && t !== 0) return t;
    return fromContainer?.[k];
  };
  const binary = pick('binaryName') || defaultRuntime;
  let runtime: RuntimeChoice;
  if (binary === 'library') {
    runtime = { kind: 'library' };
  } else {
    const root = pick('root');
    const systemd = pick('systemdCgroup') === true;
    runtime = {
      kind: 'binary',
      path: binary,
      ...(root !== undefined && root !== '' ? { root } : {}),
      ...(systemd ? { systemdCgroup: true } : {}),
    };
  }
  return { runtime, noPivot: pick('noPivotRoot') === true, noNewKeyring: pick('noNewKeyring') === true };
}
