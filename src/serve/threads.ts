/**
 * Worker threads with request/response messages. The serving engine runs tokenisation and inference on
 * threads of their own so the event loop (HTTP, queue locks, /health) never waits for a forward pass.
 */
import { Worker, type MessagePort } from 'node:worker_threads';
import { ModernBertError } from '../errors.js';

/** Thrown on the caller's side when the thread's handler threw (the message is the thread's). */
export class WorkerError extends ModernBertError {
  constructor(message: string, readonly errorName: string) {
    super(message);
  }
}

/** A request to a thread, tagged so its reply finds the caller. */
export interface Envelope<T> {
  id: number;
  body: T;
}

export type Reply<R> = { id: number; ok: true; body: R } | { id: number; ok: false; name: string; message: string };

/**
 * Starts the worker module `url`. Under tsx (sources run as .ts, as the tests do) a worker does not inherit
 * the loader, so the thread registers tsx before importing the module; compiled .js starts directly.
 */
function startWorker(url: URL, workerData: unknown): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  // An eval'd worker resolves bare names from the current folder, which need not hold tsx: resolve it from here.
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** The worker module beside `from` (an import.meta.url) named `name`, with the caller's extension (.ts or .js). */
export function siblingModule(from: string, name: string): URL {
  return new URL(`./${name}${from.endsWith('.ts') ? '.ts' : '.js'}`, from);
}

/**
 * The caller's side of one worker thread: `call(body)` posts a request and resolves with the reply. The
 * thread posts `{ ready: info }` once it has loaded; `ready` resolves with that info, or rejects with the
 * thread's startup error.
 */
export class ThreadClient<Req, Res, Info = null> {
  readonly ready: Promise<Info>;
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: Res) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failed: Error | null = null;

  constructor(url: URL, workerData: unknown) {
    this.worker = startWorker(url, workerData);
    this.ready = new Promise<Info>((resolve, reject) => {
      this.worker.on('message', (m: Reply<Res> | { ready: Info }) => {
        if ('ready' in m) return resolve(m.ready);
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.body);
        else p.reject(new WorkerError(m.message, m.name));
      });
      // A thread that dies (startup error, crash) fails every call still waiting, and every later one.
      const fail = (e: Error) => {
        this.failed = e;
        reject(e);
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      };
      // The thread's error arrives as a plain copy: rewrap it so callers (and the CLI) see a library error.
      this.worker.on('error', (e) => fail(Object.assign(new WorkerError(e.message, e.name), { stack: e.stack })));
      this.worker.on('exit', (code) => fail(new ModernBertError(`worker thread ${url.pathname} exited (code ${code})`)));
    });
    this.ready.catch(() => {}); // callers see the error through `ready` or `call`
  }

  /** False once the thread has died (every call then fails). */
  get alive(): boolean {
    return this.failed === null;
  }

  call(body: Req, transfer: ArrayBuffer[] = []): Promise<Res> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<Res>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, body } satisfies Envelope<Req>, transfer);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/**
 * The thread's side, once it has loaded: announces `ready` with `info`, then answers each request with
 * `handle`. Errors are sent back by name and message.
 */
export function serveThread<Req, Res, Info = null>(
  port: MessagePort, info: Info, handle: (body: Req) => { body: Res; transfer?: ArrayBuffer[] },
): void {
  port.on('message', ({ id, body }: Envelope<Req>) => {
    try {
      const r = handle(body);
      port.postMessage({ id, ok: true, body: r.body } satisfies Reply<Res>, r.transfer ?? []);
    } catch (e) {
      const err = e as Error;
      port.postMessage({ id, ok: false, name: err.name ?? 'Error', message: err.message ?? String(e) } satisfies Reply<Res>);
    }
  });
  port.postMessage({ ready: info });
}
