/**
 * execa takes ~150 ms to load here, and the plugin's socket must answer as soon as it can
 * (dockerd waits for it at boot): load it on the first host command, which comes after listening.
 */
type ExecaModule = typeof import('execa');

let loading: Promise<ExecaModule> | undefined;

export const loadExeca = (): Promise<ExecaModule> => (loading ??= import('execa'));
