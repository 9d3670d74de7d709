/**
 * `inmesh export --to consul --apply`: writes each exported config entry with
 * `PUT /v1/config`, in the files' order (service-defaults before the resolver,
 * the resolver before the splitter and the router: Consul checks each write
 * against what is already stored). The agent and the token come from the same
 * settings as the registry (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN` /
 * `CONSUL_HTTP_TOKEN_FILE`, the TLS variables; see config/load.ts) and the
 * requests go through the registry's client, which keeps the token out of every
 * message.
 */
import { loadConfig } from '../config/load.ts';
import { ExportError } from '../errors.ts';
import { ConsulHttp } from '../registry/consul-http.ts';
import type { ExportedFile } from './types.ts';

/** Deadline of one write (ms): a config write is one Raft commit on the servers. */
const WRITE_TIMEOUT_MS = 10_000;

export async function applyConsul(files: readonly ExportedFile[], env: NodeJS.ProcessEnv): Promise<void> {
  const consul = new ConsulHttp(loadConfig({ env }).consul);
  try {
    for (const file of files) {
      for (const entry of file.documents) {
        const { Kind: kind, Name: name } = entry as { Kind?: unknown; Name?: unknown };
        const what = `${String(kind)} ${String(name)} (${file.name})`;
        let answer;
        try {
          answer = await consul.request({ method: 'PUT', path: '/config', body: entry, timeoutMs: WRITE_TIMEOUT_MS });
        } catch (error) {
          throw new ExportError(`consul refused config entry ${what}: ${(error as Error).message}`);
        }
        // Without ?cas the agent answers true on success; anything else is a refusal.
        if (answer.body !== true) throw new ExportError(`consul did not store config entry ${what}: it answered ${JSON.stringify(answer.body)}`);
      }
    }
  } finally {
    consul.destroy();
  }
}
