// Starts a cluster, reports where, and waits for the test to read that. Then it dies the way
// the test asks: an uncaught exception ('throw', when a line arrives on stdin) or the signal the
// test sends ('wait').
import { startCluster } from '../index.js';

const [version, mode] = process.argv.slice(2);
const cluster = await startCluster({ version: Number(version) });
process.stdout.write(`${JSON.stringify({ baseDir: cluster.baseDir, dataDir: cluster.dataDir })}\n`);
process.stdin.once('data', () => {
  if (mode === 'throw') throw new Error('simulated crash of a test process');
});
