// Installing the PWA: Chromium fires `beforeinstallprompt` when the app is installable (manifest,
// icons, a service worker controlling the page); the Settings page offers the saved prompt.
interface InstallPromptEvent extends Event {
  prompt(): Promise<void>;
  userChoice: Promise<{ outcome: 'accepted' | 'dismissed' }>;
}

export const install = $state<{ available: boolean; installed: boolean }>({
  available: false,
  installed: typeof matchMedia !== 'undefined' && matchMedia('(display-mode: standalone)').matches,
});

let deferred: InstallPromptEvent | null = null;

if (typeof addEventListener !== 'undefined') {
  addEventListener('beforeinstallprompt', (event) => {
    event.preventDefault();
    deferred = event as InstallPromptEvent;
    install.available = true;
  });
  addEventListener('appinstalled', () => {
    install.installed = true;
    install.available = false;
  });
}

export async function promptInstall(): Promise<'accepted' | 'dismissed' | 'unavailable'> {
  if (!deferred) return 'unavailable';
  await deferred.prompt();
  const { outcome } = await deferred.userChoice;
  deferred = null;
  install.available = false;
  return outcome;
}
