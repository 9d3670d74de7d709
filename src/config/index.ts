/** Configuration sources: code > environment > policy file > defaults. */
export { loadConfig, explainConfig, readPolicyFile, type ResolvedConfig, type LoadConfigOptions, type ConfigInput, type CodePolicy, type ServiceIdentity, type TelemetrySettings, type SettingSource } from './load.ts';
export { ENV_VARIABLES, parseConsulAddress, type EnvVariable } from './env.ts';
export { CONSUL_DEFAULTS, type ConsulConnection } from '../registry/consul-connection.ts';
export { Secret, isSecret } from '../internal/secret.ts';
