// Starts build/bin/sfsim (or $SFSIM_BIN) on a free port and stops it.
// Used by sfsim_conformance.test.mjs; run from the repo root.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export async function startSim(args = []) {
  const bin = process.env.SFSIM_BIN || 'build/bin/sfsim';
  const child = spawn(bin, ['--port', '0', '--quiet', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sfsim did not start in 30 s')), 30000);
    child.once('exit', (code) => reject(new Error(`sfsim exited early with ${code}`)));
    rl.once('line', (line) => {
      clearTimeout(timer);
      const m = /^sfsim listening on (https?:\/\/\S+)$/.exec(line);
      if (m) resolve(m[1]);
      else reject(new Error(`unexpected first line from sfsim: ${line}`));
    });
  });
  return {
    url,
    async control(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      return code;
    },
  };
}
