/**
 * At most so many open connections per client address, across the box's listeners.
 *
 * The request timeouts end a slow connection, but not many of them at once: one LAN client opening
 * hundreds of sockets would take every file descriptor and the listeners' global caps, and the real users
 * would be turned away. A connection over its client's cap is destroyed when it is accepted, before any
 * byte is parsed or (on HTTPS) any handshake is made: the 'connection' event of the TCP server, which a TLS
 * server also emits before the handshake.
 */
import type { Server, Socket } from "node:net";

export class ConnectionCap {
  readonly #perClient: number;
  readonly #onRefused: (address: string) => void;
  #open = new Map<string, number>();

  constructor(perClient: number, onRefused: (address: string) => void) {
    this.#perClient = perClient;
    this.#onRefused = onRefused;
  }

  /** Applies the cap to this server's connections (shared with the other servers it was applied to). */
  apply(server: Server): void {
    server.on("connection", (socket: Socket) => this.#admit(socket));
  }

  #admit(socket: Socket): void {
    // Undefined when the client has already gone: nothing to count.
    const address = socket.remoteAddress;
    if (address === undefined) {
      socket.destroy();
      return;
    }
    const open = this.#open.get(address) ?? 0;
    if (open >= this.#perClient) {
      socket.destroy();
      this.#onRefused(address);
      return;
    }
    this.#open.set(address, open + 1);
    socket.once("close", () => this.#closed(address));
  }

  #closed(address: string): void {
    const open = (this.#open.get(address) ?? 0) - 1;
    if (open > 0) this.#open.set(address, open);
    else this.#open.delete(address);
  }
}
