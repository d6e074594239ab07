/**
 * The one parser for `HOST:PORT` values (listen addresses, DNS servers, metrics endpoints). IPv6 hosts are
 * written in brackets, `[::1]:53`, so the last colon is never ambiguous. Each caller says what it accepts:
 * an IP address only (a socket that binds, or a resolver asked by address) or a host name too, and whether
 * the port may be left out.
 */
import { isIP } from "node:net";
import { ValueError } from "./cli-arguments.ts";

export interface HostPort {
  host: string;
  port: number;
}

export interface HostPortRules {
  /** The host must be an IP address (not a name). Default: true. */
  ipOnly?: boolean;
  /** The port used when the value has none; without it a port is required. */
  defaultPort?: number;
  /** The lowest port accepted (0 lets the system pick one). Default: 0. */
  minPort?: number;
}

/** Thrown with a message fit for the command line; callers wrap it in their own error type. */
export class HostPortError extends ValueError {
  override readonly name = "HostPortError";
}

const PATTERN = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+))(?::(\d{1,5}))?$/;

export function parseHostPort(value: string, rules: HostPortRules = {}): HostPort {
  const ipOnly = rules.ipOnly ?? true;
  const minPort = rules.minPort ?? 0;
  const example = ipOnly ? "127.0.0.1:5353, [::1]:5353" : "127.0.0.1:8700, issuer.example.net:443, [::1]:8700";
  const what = rules.defaultPort === undefined ? (ipOnly ? "IP:PORT" : "HOST:PORT") : ipOnly ? "IP[:PORT]" : "HOST[:PORT]";
  const match = PATTERN.exec(value.trim());
  const bracketed = match?.[1];
  const host = bracketed ?? match?.[2] ?? "";
  const portText = match?.[3];
  if (!match || (bracketed !== undefined && isIP(bracketed) !== 6) || (ipOnly && isIP(host) === 0)) {
    throw new HostPortError(`"${value}" is not ${what} (examples: ${example})`);
  }
  if (portText === undefined) {
    if (rules.defaultPort === undefined) throw new HostPortError(`"${value}" is not ${what}: it needs a port (examples: ${example})`);
    return { host: host.toLowerCase(), port: rules.defaultPort };
  }
  const port = Number(portText);
  if (port < minPort || port > 65535) throw new HostPortError(`"${value}" is not ${what}: the port must be from ${minPort} to 65535`);
  return { host: host.toLowerCase(), port };
}

/** `127.0.0.1:53`, `[::1]:53`: the form parseHostPort reads back. */
export function formatHostPort({ host, port }: HostPort): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** A port number alone, `0` to `65535` (0 lets the system pick one). */
export function parsePort(value: string): number {
  const port = Number(value.trim());
  if (!/^\d{1,5}$/.test(value.trim()) || port > 65535) throw new HostPortError(`"${value}" is not a port number (0-65535)`);
  return port;
}
