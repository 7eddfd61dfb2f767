// Count the leaf test points of a TAP 14 stream and print "passed failed skipped". Each failing
// leaf is also written to stderr as "file > subtest > point", so a log's tail names what failed.
// A point that closes a subtest is preceded by that subtest's deeper-indented body; it is a
// parent, not counted, so one failing assertion counts once rather than once per enclosing test.
const fs = require('fs');
const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n');
const indentOf = (s) => s.length - s.trimStart().length;
let passed = 0, failed = 0, skipped = 0;
const subtests = []; // the names of the open subtests, by depth
for (let i = 0; i < lines.length; i++) {
  const sub = /^(\s*)# Subtest: (.*)$/.exec(lines[i]);
  if (sub) {
    const depth = Math.floor(sub[1].length / 4);
    subtests.length = depth;
    subtests[depth] = sub[2];
    continue;
  }
  const m = /^(\s*)(not ok|ok)\b(.*)$/.exec(lines[i]);
  if (!m) continue;
  let j = i - 1;
  for (;;) {
    while (j >= 0 && (lines[j].trim() === '' || /^\s*#/.test(lines[j]))) j--;
    if (j >= 0 && lines[j].trim() === '...') {
      // Skip a YAML diagnostics block back to its '---' and the point it belongs to.
      while (j >= 0 && lines[j].trim() !== '---') j--;
      j--;
      continue;
    }
    break;
  }
  if (j >= 0 && indentOf(lines[j]) > m[1].length) continue;
  if (/#\s*(SKIP|TODO)/i.test(lines[i])) skipped++;
  else if (m[2] === 'ok') passed++;
  else {
    failed++;
    const where = subtests.slice(0, Math.floor(m[1].length / 4));
    console.error([...where, m[3].replace(/^\s*\d*\s*-?\s*/, '')].join(' > '));
  }
}
console.log(`${passed} ${failed} ${skipped}`);
