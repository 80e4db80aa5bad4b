// node:net's `connect(path)` for the CNI executable, over Bun's own sockets (`Bun.connect`). The plugin
// tells the agent about a pod over a unix socket (src/plugin/agent-client.ts, `import('node:net')`);
// in the compiled executable, loading Bun's node:net module took 5–25 ms of every ADD with an agent,
// more than the agent's answer itself, while Bun.connect is native and already there.
// scripts/build-cni.mjs resolves node:net to this module for that executable only; the agent and the
// command line keep node:net. It implements what the agent client uses and nothing more: connect to
// a path; the events connect, data, end and error; end(data), which writes and half-closes as
// node:net does (the agent's server allows half-open connections and answers after the request's
// newline); destroy().

type Listener = (arg?: unknown) => void;
type Event = 'connect' | 'data' | 'end' | 'error' | 'close';

/** The part of Bun's socket API used here (https://bun.com/docs/runtime/networking/tcp). */
interface BunSocket {
  write(data: Uint8Array): number;
  /** Without an argument, shutdown(2) of the writing side only (Bun 1.4.4: `true` stops reading). */
  shutdown(halfClose?: boolean): void;
  end(): void;
  terminate(): void;
}
interface BunSocketHandlers {
  open(socket: BunSocket): void;
  data(socket: BunSocket, data: Uint8Array): void;
  drain(socket: BunSocket): void;
  end(socket: BunSocket): void;
  close(socket: BunSocket, error?: Error): void;
  error(socket: BunSocket, error: Error): void;
  connectError(socket: BunSocket, error: Error): void;
}
interface BunApi {
  connect(opts: { unix: string; allowHalfOpen: boolean; socket: BunSocketHandlers }): Promise<BunSocket>;
}

export class UnixSocket {
  private readonly listeners = new Map<Event, { fn: Listener; once: boolean }[]>();
  private socket: BunSocket | undefined;
  private unsent: Uint8Array | undefined;
  private shutdownAfterWrite = false;
  private failed = false;
  private endSeen = false;
  destroyed = false;

  on(event: Event, fn: Listener): this {
    return this.listen(event, fn, false);
  }

  once(event: Event, fn: Listener): this {
    return this.listen(event, fn, true);
  }

  /** Writes `data` (if any), then closes this side for writing; answers can still arrive. */
  end(data?: string | Uint8Array): this {
    if (this.destroyed || !this.socket) return this;
    if (data !== undefined) this.unsent = typeof data === 'string' ? Buffer.from(data) : data;
    this.shutdownAfterWrite = true;
    this.flush();
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.socket?.terminate();
    return this;
  }

  /** Bun's socket handlers, bound to this socket. */
  handlers(): BunSocketHandlers {
    return {
      open: (socket) => {
        this.socket = socket;
        if (this.destroyed) return socket.terminate();
        this.emit('connect');
      },
      // A copy: the client keeps chunks until the answer's newline, and Bun may reuse its buffer.
      data: (_socket, data) => this.emit('data', Buffer.from(data)),
      drain: () => this.flush(),
      end: () => this.ended(),
      // A peer that closes outright is an end of the stream too, as node:net reports it.
      close: () => {
        if (!this.failed) this.ended();
        this.emit('close');
      },
      error: (_socket, error) => this.fail(error),
      connectError: (_socket, error) => this.fail(error),
    };
  }

  private ended(): void {
    if (this.endSeen) return;
    this.endSeen = true;
    this.emit('end');
  }

  fail(error: unknown): void {
    // Bun reports a refused connection both to connectError and by rejecting connect()'s promise.
    if (this.failed) return;
    this.failed = true;
    this.emit('error', error);
  }

  private flush(): void {
    const socket = this.socket;
    if (!socket || this.destroyed) return;
    if (this.unsent && this.unsent.length > 0) {
      const n = socket.write(this.unsent);
      this.unsent = n >= 0 ? this.unsent.subarray(n) : this.unsent;
      if (this.unsent.length > 0) return; // the rest goes on 'drain'
    }
    if (this.shutdownAfterWrite) {
      this.shutdownAfterWrite = false;
      socket.shutdown();
    }
  }

  private listen(event: Event, fn: Listener, once: boolean): this {
    const list = this.listeners.get(event) ?? [];
    list.push({ fn, once });
    this.listeners.set(event, list);
    return this;
  }

  private emit(event: Event, arg?: unknown): void {
    if (this.destroyed && event !== 'close') return;
    const list = this.listeners.get(event);
    if (!list) return;
    this.listeners.set(
      event,
      list.filter((l) => !l.once),
    );
    for (const l of list) l.fn(arg);
  }
}

/** Connects to the unix socket at `path`; events follow as node:net's would. */
export function connect(path: string): UnixSocket {
  const socket = new UnixSocket();
  const bun = (globalThis as unknown as { Bun: BunApi }).Bun;
  // Bun can report a missing socket file before connect() returns, so the connection starts once the
  // caller's listeners are on (node:net reports its errors asynchronously as well).
  queueMicrotask(() => {
    try {
      // Half-open allowed: closing this side for writing must leave the agent's answer to come.
      bun
        .connect({ unix: path, allowHalfOpen: true, socket: socket.handlers() })
        .catch((err: unknown) => socket.fail(err));
    } catch (err) {
      socket.fail(err);
    }
  });
  return socket;
}
