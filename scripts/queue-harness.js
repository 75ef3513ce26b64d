// Harness for the queue tests (test/queue.test.ts) and scripts/bench-queue.js: a redis-server of its own on
// 127.0.0.1 (ephemeral port, data in a given directory, append-only file on so a restart keeps the queue),
// mnq child processes (`node dist/cli.js worker|submit|classify ...`) whose output lines can be awaited,
// and an HTTP server of image files on 127.0.0.1 that can hold a request until the caller lets it go.
// Everything listens on loopback only and stops when asked.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');

/** The redis-server binary (MNQ_REDIS_SERVER, else /usr/bin/redis-server), or null when there is none. */
function redisServerPath() {
  const p = process.env.MNQ_REDIS_SERVER || '/usr/bin/redis-server';
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return p;
  } catch {
    return null;
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when Redis answers PING on the port (it is loading its data until then), or rejects after `ms`. */
async function waitForRedis(port, ms = 15000) {
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      let got = '';
      c.setTimeout(1000, () => { c.destroy(); resolve(false); });
      c.on('error', () => resolve(false));
      c.on('connect', () => c.write('PING\r\n'));
      c.on('data', (d) => {
        got += d;
        if (got.includes('\r\n')) { c.destroy(); resolve(got.startsWith('+PONG')); }
      });
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`redis-server on port ${port} did not answer PING within ${ms} ms`);
    await sleep(50);
  }
}

/** A redis-server on 127.0.0.1 with its data (append-only file) in `dir`. */
class RedisServer {
  constructor(bin, dir, port) {
    this.bin = bin;
    this.dir = dir;
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.proc = null;
    this.restarts = 0;
  }

  static async start(dir, bin = redisServerPath()) {
    if (!bin) throw new Error('redis-server not found (apt-get install redis-server, or set MNQ_REDIS_SERVER)');
    fs.mkdirSync(dir, { recursive: true });
    const r = new RedisServer(bin, dir, await freePort());
    await r.launch();
    return r;
  }

  async launch() {
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--daemonize', 'no',
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--logfile', path.join(this.dir, 'redis.log'),
      '--protected-mode', 'yes',
    ];
    const proc = spawn(this.bin, args, { stdio: 'ignore' });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
    const early = this.exited.then(({ code, sig }) => {
      throw new Error(`redis-server exited at start (code ${code}, signal ${sig}); see ${path.join(this.dir, 'redis.log')}`);
    });
    await Promise.race([waitForRedis(this.port), early]);
  }

  get pid() {
    return this.proc ? this.proc.pid : undefined;
  }

  /** Stops it cleanly (SIGTERM: Redis writes its append-only file and exits). */
  async stop() {
    if (!this.proc) return;
    const proc = this.proc;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await this.exited;
  }

  /**
   * Stops it and starts it again on the same port: with its data (what the append-only file holds), or with
   * none (`keepData` false: as a restart without persistence).
   */
  async restart(keepData = true) {
    await this.stop();
    if (!keepData) {
      for (const f of fs.readdirSync(this.dir)) if (f !== 'redis.log') fs.rmSync(path.join(this.dir, f), { recursive: true, force: true });
    }
    await this.launch();
    this.restarts++;
  }
}

/** A child process of `node dist/cli.js ARGS` whose stdout / stderr lines are kept and can be awaited. */
class MnqProcess {
  constructor(args, options = {}) {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build:ts'`);
    this.args = args;
    this.stdout = [];
    this.stderr = [];
    this.waiters = [];
    this.proc = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd || ROOT, env: { ...process.env, ...(options.env || {}) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.proc.pid;
    const split = (stream, into) => {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (d) => {
        rest += d;
        let nl;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          into.push(line);
          if (options.echo) process.stderr.write(`[${options.echo}] ${line}\n`);
          this.waiters = this.waiters.filter((w) => !w(line));
        }
      });
      stream.on('end', () => { if (rest) into.push(rest); });
    };
    split(this.proc.stdout, this.stdout);
    split(this.proc.stderr, this.stderr);
    this.exited = new Promise((resolve) => this.proc.on('close', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves with the first stderr line matching `re` (seen already or to come); rejects after `ms` or at exit. */
  waitForLine(re, ms = 60000) {
    const seen = this.stderr.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} from 'mnq ${this.args[0]}' within ${ms} ms; stderr:\n${this.stderr.join('\n')}`)), ms);
      this.waiters.push((line) => {
        if (!re.test(line)) return false;
        clearTimeout(timer);
        resolve(line);
        return true;
      });
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`'mnq ${this.args[0]}' exited (code ${code}, signal ${signal}) before a line matching ${re}; stderr:\n${this.stderr.join('\n')}`));
      });
    });
  }

  /** Resolves with the exit code; rejects after `ms` (and kills the process). */
  async wait(ms = 120000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => {
        this.proc.kill('SIGKILL');
        reject(new Error(`'mnq ${this.args.join(' ')}' did not finish within ${ms} ms; stderr:\n${this.stderr.join('\n')}`));
      }, ms);
    });
    try {
      const { code, signal } = await Promise.race([this.exited, timeout]);
      return code === null ? `signal ${signal}` : code;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal = 'SIGTERM') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
  }
}

/**
 * An HTTP server on 127.0.0.1 serving the files of `dir` by name (GET /NAME). `hold(name)` makes the next
 * request for NAME wait: it resolves with { release(), drop() } when that request arrives.
 */
async function imageServer(dir) {
  const requests = new Map();
  const holds = new Map();
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url || '/').slice(1));
    requests.set(name, (requests.get(name) || 0) + 1);
    const serve = () => {
      if (!name || name.includes('/') || name.includes('..')) {
        res.writeHead(400).end();
        return;
      }
      fs.readFile(path.join(dir, name), (err, data) => {
        if (err) res.writeHead(404).end();
        else res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length }).end(data);
      });
    };
    const hold = holds.get(name);
    if (hold) {
      holds.delete(name);
      hold({ release: serve, drop: () => res.destroy() });
    } else serve();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    host: `127.0.0.1:${port}`,
    url: (name) => `http://127.0.0.1:${port}/${encodeURIComponent(name)}`,
    requests,
    hold: (name) => new Promise((resolve) => holds.set(name, resolve)),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

module.exports = { CLI, redisServerPath, freePort, RedisServer, MnqProcess, imageServer, sleep };
