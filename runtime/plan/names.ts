/*
 * The comm names (prctl PR_SET_NAME) the plans give the processes the C helper starts, so `ps`
 * shows which stage a process is in. `start` reads init's to see that it has exec'd the
 * container's process (exec resets comm to the program's name).
 */

/** init from clone until it execs the container's process. */
export const INIT_PROCESS_NAME = 'tsrun:[1:init]';
/** an exec'd process until it execs its program. */
export const EXEC_PROCESS_NAME = 'tsrun:[exec]';
