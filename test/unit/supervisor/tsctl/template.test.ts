/*
 * tsctl inspect --format: docker's Go template subset over an inspect object.
 */
import t from 'tap';
import { parseTemplate, renderTemplate } from '../../../../supervisor/tsctl/template';

const obj = {
  Id: 'abc',
  Name: '/web',
  Args: ['-c', 'sleep 1'],
  State: { Status: 'running', Running: true, Pid: 4242, OOMKilled: false, ExitCode: 0 },
  Config: { Labels: { 'tsctl.name': 'web', z: '1' }, Env: [] as string[] },
  HostConfig: { Memory: 33554432, PidsLimit: null },
  Mounts: [
    { Source: '/a', Destination: '/x' },
    { Source: '/b', Destination: '/y' },
  ],
};
const render = (src: string): string => renderTemplate(parseTemplate(src), obj);

t.test('fields, nested, and Go %v printing', async (t) => {
  t.equal(render('{{.State.Pid}}'), '4242');
  t.equal(render('{{.Name}} {{.State.Status}} {{.State.Running}}'), '/web running true');
  t.equal(render('{{.HostConfig.Memory}}'), '33554432', 'integers print whole');
  t.equal(render('{{.HostConfig.PidsLimit}}'), '<nil>');
  t.equal(render('{{.Args}}'), '[-c sleep 1]');
  t.equal(render('{{.Config.Labels}}'), 'map[tsctl.name:web z:1]', 'maps with sorted keys');
  t.equal(render('{{.Nope}}|{{.State.Nope.Deeper}}'), '<no value>|<no value>');
  t.equal(render('pid={{ .State.Pid }}!'), 'pid=4242!', 'spaces inside the action');
});

t.test('json, index, len, join, upper, lower', async (t) => {
  t.equal(render('{{json .State}}'), JSON.stringify(obj.State));
  t.same(JSON.parse(render('{{json .}}')), obj);
  t.equal(render('{{index .Config.Labels "tsctl.name"}}'), 'web');
  t.equal(render('{{index .Config.Labels "missing"}}'), '<no value>');
  t.equal(render('{{index .Mounts 1}}'), 'map[Destination:/y Source:/b]');
  t.equal(render('{{len .Mounts}} {{len .Config.Labels}} {{len .Name}}'), '2 2 4');
  t.equal(render('{{join .Args ","}}'), '-c,sleep 1');
  t.equal(render('{{upper .State.Status}}{{lower "AB"}}'), 'RUNNINGab');
});

t.test('if / else / end, range / else / end, trim markers', async (t) => {
  t.equal(render('{{if .State.Running}}up{{else}}down{{end}}'), 'up');
  t.equal(render('{{if .State.OOMKilled}}oom{{end}}'), '');
  t.equal(render('{{if .Config.Env}}env{{else}}no env{{end}}'), 'no env', 'an empty list is false');
  t.equal(render('{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}'), '/a:/x /b:/y ');
  t.equal(render('{{range .Config.Env}}x{{else}}none{{end}}'), 'none');
  t.equal(render('a   {{- .Id -}}   b'), 'aabcb');
  t.equal(render('{{range .Mounts}}{{if .Source}}[{{.Source}}]{{end}}{{end}}'), '[/a][/b]', 'nested blocks');
});

t.test('what is not supported is an error that names it', async (t) => {
  t.throws(() => parseTemplate('{{.Name | upper}}'), { code: 'InvalidArgument', message: /pipelines are not supported/ });
  t.throws(() => parseTemplate('{{$x := .Name}}'), { message: /\{\{\$x\}\} is not supported/ });
  t.throws(() => parseTemplate('{{with .State}}{{.Pid}}{{end}}'), { message: /\{\{with\}\} is not supported/ });
  t.throws(() => parseTemplate('{{if .A}}x'), { message: /\{\{if\}\} without \{\{end\}\}/ });
  t.throws(() => parseTemplate('{{end}}'), { message: /unexpected \{\{end\}\}/ });
  t.throws(() => parseTemplate('{{.Name'), { message: /unclosed action/ });
  t.throws(() => parseTemplate('{{printf "%d" .State.Pid}}'), { message: /unsupported action/ });
  t.throws(() => render('{{index .Mounts 5}}'), { message: /index 5 out of range \(2 elements\)/ });
});
