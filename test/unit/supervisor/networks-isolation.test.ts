/** tsrund's iptables chains as one iptables-restore: isolation, accepts and one masquerade rule per network. */
import t from 'tap';
import { restoreText } from '../../../supervisor/networks/isolation';

t.test('restoreText declares the chains and masquerades only networks that are not internal', async (t) => {
  const text = restoreText(
    [
      { bridge: 'br-a', internal: false, subnet: '172.18.0.0/16' },
      { bridge: 'br-i', internal: true, subnet: '172.19.0.0/16' },
    ],
    'TST',
  );
  const lines = text.split('\n');
  t.same(lines.slice(0, 4), ['*filter', ':TST-FORWARD - [0:0]', ':TST-ISOLATION-1 - [0:0]', ':TST-ISOLATION-2 - [0:0]']);
  t.ok(lines.includes('-A TST-ISOLATION-1 -i br-i ! -o br-i -j DROP'), 'the internal network forwards nothing out');
  const nat = lines.slice(lines.indexOf('*nat'));
  t.same(nat, ['*nat', ':TST-POSTROUTING - [0:0]', '-A TST-POSTROUTING -s 172.18.0.0/16 ! -o br-a -j MASQUERADE', 'COMMIT', '']);
});
