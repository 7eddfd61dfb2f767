/** Metadata instructions applied to an image config as docker's classic builder does. */
import t from 'tap';
import { parseDockerfile } from '../../../../supervisor/build/dockerfile';
import { scratchState } from '../../../../supervisor/build/layer';
import { applyMetadata, envVars } from '../../../../supervisor/build/metadata';

function apply(text: string, base = scratchState()): { cfg: ReturnType<typeof scratchState>['config']; history: string[] } {
  const flags = { cmdSet: false };
  const history: string[] = [];
  for (const ins of parseDockerfile(text).instructions) history.push(applyMetadata(base.config, ins, envVars(base.config.config.Env), '\\', flags));
  return { cfg: base.config, history };
}

t.test('CMD/ENTRYPOINT: shell form through SHELL, ENTRYPOINT drops an inherited CMD only', async (t) => {
  const base = scratchState();
  base.config.config.Cmd = ['inherited'];
  const { cfg } = apply('ENTRYPOINT run me\n', base);
  t.same(cfg.config.Entrypoint, ['/bin/sh', '-c', 'run me']);
  t.equal(cfg.config.Cmd, null, 'the base image\'s CMD goes');
  const both = apply('SHELL ["/bin/bash", "-ec"]\nCMD echo $HOME\nENTRYPOINT ["/e"]\n').cfg;
  t.same(both.config.Cmd, ['/bin/bash', '-ec', 'echo $HOME'], 'CMD is not substituted; SHELL applies');
  t.same(both.config.Entrypoint, ['/e']);
});

t.test('ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, ONBUILD, MAINTAINER', async (t) => {
  const { cfg, history } = apply(
    'ENV A=1 B="x y"\nENV C=${A}-${B}\nLABEL "k 1"=v k2=${C}\nWORKDIR /a\nWORKDIR b/${A}\nUSER ${A}:2\nEXPOSE 80 53/udp 1000-1001\nVOLUME /v /w\nVOLUME ["/w2"]\nSTOPSIGNAL SIGTERM\nONBUILD RUN x\nMAINTAINER me\n',
  );
  t.same(cfg.config.Env, ['A=1', 'B=x y', 'C=1-x y']);
  t.same(cfg.config.Labels, { 'k 1': 'v', k2: '1-x y' });
  t.equal(cfg.config.WorkingDir, '/a/b/1', 'relative WORKDIR joins the previous one');
  t.equal(cfg.config.User, '1:2');
  t.same(Object.keys(cfg.config.ExposedPorts ?? {}), ['80/tcp', '53/udp', '1000/tcp', '1001/tcp']);
  t.same(Object.keys(cfg.config.Volumes ?? {}), ['/v', '/w', '/w2'], 'VOLUME: words or a JSON array');
  t.equal(cfg.config.StopSignal, 'SIGTERM');
  t.same(cfg.config.OnBuild, ['RUN x']);
  t.equal(cfg.author, 'me');
  t.equal(history[0], 'ENV A=1 B=x y');
});

t.test('errors name the line', async (t) => {
  t.throws(() => apply('\nEXPOSE nope\n'), /^Dockerfile line 2: EXPOSE: invalid port "nope"/);
  t.throws(() => apply('SHELL /bin/sh\n'), /Dockerfile line 1: SHELL requires the arguments to be in JSON form/);
  t.throws(() => apply('ENV\n'), /Dockerfile line 1: ENV: ENV requires at least one argument/);
});
