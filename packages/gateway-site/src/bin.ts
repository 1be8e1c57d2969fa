#!/usr/bin/env node
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { main } from '@arteria/command';
import { GATEWAY_PROGRAM } from './commands.js';

main(GATEWAY_PROGRAM);
