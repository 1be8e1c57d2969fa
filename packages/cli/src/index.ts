export { loadConfig, explainConfig, getPath, type LoadedConfig, type ConfigSource, type ConfigInputs } from './config/load.js';
export { CONFIG_KEYS, envName, flagName, type ConfigKey, type KeyType } from './config/keys.js';
export { clusterSecrets } from './config/cluster-secrets.js';
export { ARTERIA_PROGRAM, ARTERIA_COMMANDS } from './commands.js';
export { ARTERIA_VERSION } from './version.js';
export { ROLE_HTTP_PORTS, roleDefaults, type ClusterRole } from './config/role-defaults.js';
