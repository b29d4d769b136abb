// Run inside a private network namespace (link.e2e.test.ts): measures UDP on the veth address
// without and then with `--link` (argv[2], default rate=20mbit,loss=2%,delay=40ms) and prints one
// JSON line { spec, before, after }.
import { applyLink } from '../link.ts';
import { measureUdp } from '../link-probe.ts';
import { parseLinkSpec } from '../link-spec.ts';

const HOST = '10.213.0.1';
const spec = parseLinkSpec(process.argv[2] ?? 'rate=20mbit,loss=2%,delay=40ms');
const before = await measureUdp(HOST);
const link = await applyLink(spec);
try {
  const after = await measureUdp(HOST);
  console.log(JSON.stringify({ spec: link.text, before, after }));
} finally {
  await link.close();
}
