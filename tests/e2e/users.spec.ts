// User management and re-authentication in a real Chromium against a real server: an admin creates a
// user on the Users page; the server runs with a short re-authentication window (TG_REAUTH_WINDOW_MS,
// development only, refused under TG_ENV=production) and the test lets it lapse in real time, so the
// role change answers 403 `reauth_required` and the dialog appears. Escape cancels (the page shows the
// typed error, nothing changed), a wrong password fails the change with an error, the right one
// completes it: the original request is retried exactly once, the list shows the new roles, and the
// user's open session (signed in through the API) now answers 401.
import { expect, test } from '@playwright/test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipWithoutChromium, startServer } from './support.ts';

const PASSWORD = 'correct horse battery staple';
const BOB_PASSWORD = 'bob initial password';
/** Long enough to create the user right after sign-in on a loaded machine, short enough to wait out. */
const REAUTH_WINDOW_MS = 15_000;

let root = '';
let server: Awaited<ReturnType<typeof startServer>> | undefined;

test.beforeAll(async () => {
  skipWithoutChromium();
  root = await mkdtemp(join(tmpdir(), 'tg-e2e-users-'));
  server = await startServer({ dataDir: join(root, 'server-data'), env: { TG_ENV: 'test', TG_REAUTH_WINDOW_MS: String(REAUTH_WINDOW_MS) } });
});
test.afterAll(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

test('an admin creates a user and changes roles through the re-authentication dialog', async ({ page, request }) => {
  skipWithoutChromium();
  const url = server!.url;
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 500) pageErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  const calls: string[] = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith('/v1/users/') || path === '/v1/sessions/reauth') calls.push(`${r.method()} ${path.startsWith('/v1/users/') ? '/v1/users/:id' : path}`);
  });
  const shots = (name: string) => page.screenshot({ path: join('tmp', 'playwright', 'screens', `users-${name}.png`), fullPage: true });

  let provedAt = 0;
  await test.step('first run: the admin bootstraps the organization (a password proof)', async () => {
    await page.goto(`${url}/`);
    await expect(page).toHaveURL(/\/signin$/);
    await page.getByRole('tab', { name: 'First run' }).click();
    await page.getByLabel('Organization').fill('Acme Robotics');
    await page.getByLabel('User name').fill('olivia');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create organization' }).click();
    await expect(page).toHaveURL(/\/keys$/);
    provedAt = Date.now(); // the server recorded the proof before answering
  });

  const dialog = page.getByRole('dialog', { name: 'Confirm it is you' });
  const bobRoles = page.getByTestId('roles-bob');
  await test.step('the admin creates bob (officer) within the window: no dialog', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
    await expect(page).toHaveURL(/\/users$/);
    await expect(page.getByRole('rowheader', { name: 'olivia (you)' })).toBeVisible();
    await page.getByLabel('User name').fill('bob');
    await page.getByLabel('Initial password').fill(BOB_PASSWORD);
    const create = page.getByRole('group', { name: 'Roles', exact: true });
    await create.getByRole('checkbox', { name: /^operator/ }).uncheck();
    await create.getByRole('checkbox', { name: /^officer/ }).check();
    await page.getByRole('button', { name: 'Create user' }).click();
    await expect(page.getByTestId('users-status')).toContainText('Created bob (officer)');
    await expect(bobRoles).toHaveText('officer');
    await expect(page.getByTestId('user-bob')).toContainText('Active');
    await expect(dialog).toBeHidden();
    expect(Date.now() - provedAt, 'the creation must happen inside the re-auth window').toBeLessThan(REAUTH_WINDOW_MS);
    await shots('created');
  });

  // Bob signs in elsewhere: the role change must end this session.
  const bobSignIn = await request.post(`${url}/v1/sessions`, { data: { user: 'bob', password: BOB_PASSWORD } });
  expect(bobSignIn.status()).toBe(201);
  const bobToken = ((await bobSignIn.json()) as { token: string }).token;
  expect((await request.get(`${url}/v1/me`, { headers: { authorization: `Bearer ${bobToken}` } })).status()).toBe(200);

  await test.step('the password proof lapses in real time', async () => {
    await page.waitForTimeout(Math.max(0, provedAt + REAUTH_WINDOW_MS + 1000 - Date.now()));
  });

  const bobRow = page.getByTestId('user-bob');
  const saveBob = page.getByRole('button', { name: 'Save roles of bob' });
  await test.step('the role change opens the dialog; Escape cancels and the page shows why', async () => {
    await bobRow.getByRole('checkbox', { name: 'auditor' }).check();
    await saveBob.click();
    await expect(dialog).toBeVisible();
    const password = dialog.getByLabel('Password');
    await expect(password).toBeFocused();
    // Focus stays inside the dialog: password -> Cancel -> Confirm -> password.
    await password.fill('x');
    await page.keyboard.press('Tab');
    await expect(dialog.getByRole('button', { name: 'Cancel' })).toBeFocused();
    await page.keyboard.press('Tab');
    await expect(dialog.getByRole('button', { name: 'Confirm' })).toBeFocused();
    await page.keyboard.press('Tab');
    await expect(password).toBeFocused();
    await shots('dialog');
    await page.keyboard.press('Escape');
    await expect(dialog).toBeHidden();
    await expect(page.getByRole('alert')).toContainText('Cancelled');
    await expect(page.getByRole('alert')).toContainText('reauth_cancelled');
    await expect(bobRoles).toHaveText('officer');
    await expect(saveBob).toBeFocused(); // focus returns to the control that asked
  });

  await test.step('a wrong password fails the change with an error', async () => {
    await saveBob.click();
    await expect(dialog).toBeVisible();
    await dialog.getByLabel('Password').fill('not the password');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByRole('alert')).toContainText('Wrong password');
    await expect(page.getByRole('alert')).toContainText('reauth_failed');
    await expect(bobRoles).toHaveText('officer');
    await expect(page.getByText('Your session has expired')).toBeHidden(); // a wrong password does not end the session
    await shots('wrong-password');
  });

  await test.step('the right password completes the change; the list shows the new roles', async () => {
    await saveBob.click();
    await expect(dialog).toBeVisible();
    await dialog.getByLabel('Password').fill(PASSWORD);
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByTestId('users-status')).toContainText('Roles of bob are now officer, auditor; 1 session ended.');
    await expect(bobRoles).toHaveText('officer, auditor');
    await expect(page.getByRole('alert')).toHaveCount(0);
    await page.reload();
    await expect(page.getByTestId('roles-bob')).toHaveText('officer, auditor');
    await shots('changed');
  });

  // Each refused PATCH was sent once; only the proved one was retried, exactly once.
  expect(calls).toEqual([
    'PATCH /v1/users/:id',
    'PATCH /v1/users/:id',
    'POST /v1/sessions/reauth',
    'PATCH /v1/users/:id',
    'POST /v1/sessions/reauth',
    'PATCH /v1/users/:id',
  ]);
  expect((await request.get(`${url}/v1/me`, { headers: { authorization: `Bearer ${bobToken}` } })).status()).toBe(401);

  await test.step('within the fresh window, disabling needs no dialog', async () => {
    await page.getByRole('button', { name: 'Disable bob' }).click();
    await expect(page.getByTestId('users-status')).toContainText('bob is disabled');
    await expect(page.getByTestId('user-bob')).toContainText('Disabled');
    await expect(dialog).toBeHidden();
  });
  expect((await request.post(`${url}/v1/sessions`, { data: { user: 'bob', password: BOB_PASSWORD } })).status()).toBe(401);
  expect(pageErrors).toEqual([]);
});
