#!/usr/bin/env node
// The AWS SDK is pinned to a release that supports Node 20; its notice about later releases
// would only confuse operators.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { main } from '@arteria/command';
import { ARTERIA_PROGRAM } from './commands.js';

main(ARTERIA_PROGRAM);
