/** `arteria --version`; kept in step with package.json (a test compares them). */
export const ARTERIA_VERSION = '0.1.0';
