/**
 * The login page of the operations surface: one form whose script exchanges the operator
 * token for a session cookie (GET /api/session with the token as bearer), then opens the
 * dashboard. `/login#token=...` logs in at once: a URL fragment never reaches the server
 * or its logs, so `arteria up` can print a link that carries the token.
 */
export const LOGIN_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Arteria: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}input,button{font:inherit;padding:.4rem}#error{color:#b00}</style>
</head><body>
<h1>Arteria operations</h1>
<form id="login"><label for="token">Operator token</label><br>
<input id="token" type="password" autocomplete="current-password" size="36" required> <button type="submit">Sign in</button></form>
<p id="error" role="alert"></p>
<p>The token is printed by <code>arteria up</code>, or set as <code>http.token</code> in the cluster configuration.</p>
<script src="/login.js"></script>
</body></html>
`;

export const LOGIN_SCRIPT = `'use strict';
async function login(token) {
  const res = await fetch('/api/session', { headers: { Authorization: 'Bearer ' + token }, credentials: 'same-origin' });
  if (res.ok) location.replace('/');
  else document.getElementById('error').textContent = 'That token was refused.';
}
const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromFragment) {
  history.replaceState(null, '', '/login');
  login(fromFragment);
}
document.getElementById('login').addEventListener('submit', (event) => {
  event.preventDefault();
  login(document.getElementById('token').value);
});
`;
