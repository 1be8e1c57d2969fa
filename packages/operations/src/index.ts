export * from './http/chart-assets.js';
export * from './http/dashboard-api.js';
export * from './http/dashboard-history-script.js';
export * from './http/http-server.js';
export * from './http/ops-auth.js';
export * from './http/request-view.js';
export * from './ledger-history-feed.js';
export * from './plane.js';
