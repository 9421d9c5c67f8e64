// Whether the browser believes it is online (navigator.onLine and its events), as rune state.
export const network = $state<{ online: boolean }>({ online: typeof navigator === 'undefined' ? true : navigator.onLine });

let installed = false;
export function watchNetwork(onOnline: () => void): void {
  if (installed) return;
  installed = true;
  network.online = navigator.onLine;
  addEventListener('online', () => {
    network.online = true;
    onOnline();
  });
  addEventListener('offline', () => {
    network.online = false;
  });
}
