/** A TCP address and its text form (`host:port`, `[v6]:port`), for messages and URLs. */

export interface Address {
  host: string;
  port: number;
}

export function formatAddress(address: Address): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
