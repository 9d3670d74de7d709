/**
 * Takes the configured secrets (Consul token, basic-auth pair and password,
 * Redis URL and its password) out of a text: registry errors reach callers in
 * NoEndpointsError and discoveryStatus(), and a user's registry may not scrub
 * them itself.
 */
import type { ResolvedConfig } from '../config/load.ts';

export function secretRedactor(config: ResolvedConfig): (text: string) => string {
  const secrets: string[] = [];
  const c = config.consul;
  if (c.token !== undefined) secrets.push(c.token.reveal());
  if (c.auth !== undefined) {
    const pair = c.auth.reveal();
    secrets.push(pair, pair.slice(pair.indexOf(':') + 1));
  }
  if (config.redisUrl !== undefined) {
    const url = config.redisUrl.reveal();
    secrets.push(url);
    try {
      const password = decodeURIComponent(new URL(url).password);
      if (password !== '') secrets.push(password);
    } catch {
      // not a URL: the whole value is already listed
    }
  }
  const listed = secrets.filter((s) => s !== '');
  if (listed.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const s of listed) out = out.split(s).join('[redacted]');
    return out;
  };
}
