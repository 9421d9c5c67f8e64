// A single-page app: rendered in the browser only; adapter-static writes the fallback page that the
// server returns for every client-side route (server/routes/pwa.ts).
export const ssr = false;
export const prerender = false;
export const trailingSlash = 'never';
