// Signing in to the dashboard in a real browser: with the local users form, or through the
// organisation's OpenID Connect provider (Keycloak's login form in the tests).

// Fills and submits the dashboard's own form; resolves once the browser left /login.
export async function signInWithPassword(page, baseUrl, user, password) {
  await page.goto(`${baseUrl}/login`, { waitUntil: 'domcontentloaded' });
  await page.fill('#user', user);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => u.origin === new URL(baseUrl).origin && !u.pathname.startsWith('/login')),
    page.click('#sign-in'),
  ]);
}

// Follows the SSO link to the provider, signs in there, and waits until the browser is back
// on the dashboard.
export async function signInWithSso(page, baseUrl, user, password) {
  await page.goto(`${baseUrl}/login`, { waitUntil: 'domcontentloaded' });
  await Promise.all([page.waitForSelector('#kc-form-login'), page.click('#sso')]);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => u.origin === new URL(baseUrl).origin && !u.pathname.startsWith('/login') && !u.pathname.startsWith('/auth/')),
    page.click('#kc-login'),
  ]);
}

// "name:password" from an argument.
export function credentials(text) {
  if (!text) return null;
  const at = text.indexOf(':');
  if (at <= 0) throw new Error(`expected NAME:PASSWORD, got ${text}`);
  return { user: text.slice(0, at), password: text.slice(at + 1) };
}
