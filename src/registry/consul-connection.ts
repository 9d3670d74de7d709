import type { Secret } from '../internal/secret.ts';

/**
 * How to reach the Consul agent, read from the standard `CONSUL_*` variables
 * (the same ones the `consul` CLI reads) unless given in code.
 *
 * | field | variable |
 * |---|---|
 * | host, port, secure | `CONSUL_HTTP_ADDR` (`host:port` or a URL; `https://` implies `secure`), `CONSUL_HTTP_SSL` |
 * | token | `CONSUL_HTTP_TOKEN`, else the trimmed content of `CONSUL_HTTP_TOKEN_FILE` |
 * | auth | `CONSUL_HTTP_AUTH` (`user:password`, HTTP basic auth for a proxy in front of the agent) |
 * | caFile, caPath, certFile, keyFile | `CONSUL_CACERT`, `CONSUL_CAPATH`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY` (paths; contents are never read here) |
 * | tlsVerify | `CONSUL_HTTP_SSL_VERIFY` (false: the agent's certificate is not verified) |
 * | tlsServerName | `CONSUL_TLS_SERVER_NAME` |
 * | namespace | `CONSUL_NAMESPACE` (Enterprise only: an OSS agent refuses it) |
 * | partition | `CONSUL_PARTITION` (Enterprise 1.11+ only) |
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
  /** Basic-auth credentials `user:password` (CONSUL_HTTP_AUTH); prints as `[redacted]`. */
  readonly auth?: Secret;
  /** CA bundle file (PEM) to verify the agent. */
  readonly caFile?: string;
  /** Directory of CA certificates (PEM, `*.pem` / `*.crt`) to verify the agent. */
  readonly caPath?: string;
  /** Verify the agent's certificate. Default true; false only for test set-ups. */
  readonly tlsVerify?: boolean;
  /** Client certificate file (PEM) for mTLS to the agent. */
  readonly certFile?: string;
  /** Client key file (PEM) for mTLS to the agent. */
  readonly keyFile?: string;
  /** TLS SNI / name to verify instead of `host`. */
  readonly tlsServerName?: string;
  /** Consul Enterprise namespace. */
  readonly namespace?: string;
  /** Consul Enterprise admin partition (1.11+). */
  readonly partition?: string;
  /** Datacenter to query instead of the agent's own. */
  readonly datacenter?: string;
}

/** The connection used when nothing is configured: a local agent over plain HTTP. */
export const CONSUL_DEFAULTS = {
  host: '127.0.0.1', // the local agent, as the consul CLI assumes
  port: 8500, // Consul's HTTP port
  secure: false, // plain HTTP, as the consul CLI assumes without CONSUL_HTTP_SSL
} as const;
