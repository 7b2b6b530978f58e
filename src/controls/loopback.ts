/**
 * Is a listen address a loopback one? Both built-in controls use it to refuse listeners without
 * authentication on an address other hosts can reach (HTTP always, Juggler without `users`).
 * Loopback: `127.0.0.0/8`, `::1`, `::ffff:127.0.0.0/104` in any spelling, and `localhost`; literal
 * addresses only: a host name that might resolve elsewhere is treated as non-loopback.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  if (isIPv4(h)) return loopback.check(h, 'ipv4');
  if (isIPv6(h)) return loopback.check(h, 'ipv6');
  return false;
}
