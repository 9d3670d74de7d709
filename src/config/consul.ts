import type { Secret } from './secret.ts';

/**
 * How to reach the Consul agent, read from the standard `CONSUL_*` variables
 * (the same ones the `consul` CLI reads) unless given in code.
 *
 * | field | variable |
 * |---|---|
 * | host, port, secure | `CONSUL_HTTP_ADDR` (`host:port` or a URL; `https://` implies `secure`), `CONSUL_HTTP_SSL` |
 * | token | `CONSUL_HTTP_TOKEN`, else the trimmed content of `CONSUL_HTTP_TOKEN_FILE` |
 * | caFile, certFile, keyFile | `CONSUL_CACERT`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY` (paths; contents are never read here) |
 * | tlsServerName | `CONSUL_TLS_SERVER_NAME` |
 * | namespace | `CONSUL_NAMESPACE` (Enterprise only: an OSS agent refuses it) |
 * | datacenter | `INMESH_DATACENTER` |
 */
export interface ConsulConnection {
  /** Agent host name or IP. Default `127.0.0.1`. */
  readonly host: string;
  /** Agent HTTP(S) port. Default 8500 (8501 is the usual HTTPS port). */
  readonly port: number;
  /** Use HTTPS. Default false. */
  readonly secure: boolean;
  /** ACL token; prints as `[redacted]`. */
  readonly token?: Secret;
  /** CA bundle file (PEM) to verify the agent. */
  readonly caFile?: string;
  /** Client certificate file (PEM) for mTLS to the agent. */
  readonly certFile?: string;
  /** Client key file (PEM) for mTLS to the agent. */
  readonly keyFile?: string;
  /** TLS SNI / name to verify instead of `host`. */
  readonly tlsServerName?: string;
  /** Consul Enterprise namespace. */
  readonly namespace?: string;
  /** Datacenter to query instead of the agent's own. */
  readonly datacenter?: string;
}

/** The connection used when nothing is configured: a local agent over plain HTTP. */
export const CONSUL_DEFAULTS = {
  host: '127.0.0.1', // the local agent, as the consul CLI assumes
  port: 8500, // Consul's HTTP port
  secure: false, // plain HTTP, as the consul CLI assumes without CONSUL_HTTP_SSL
} as const;
