// Mnemo's service worker: it keeps a copy of the app (every file of the bundle) after the
// first visit, so the page opens and trains without a network. scripts/stamp-offline
// fills in the build and the file list when the bundle is built; a new build has a new
// BUILD, so the browser installs it beside the old one and the page says that a new
// version is ready: it takes effect on the next visit, or at once when the page asks.
const BUILD = '__MNEMO_BUILD__';
const FILES = __MNEMO_FILES__;
const CACHE = `mnemo-${BUILD}`;

self.addEventListener('install', (event) => {
  // `cache: 'reload'` so the copy is the server's, not the HTTP cache's older one.
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(FILES.map((f) => new Request(f, { cache: 'reload' })))),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('mnemo-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// The page asks a waiting version to take over when the user chooses "Use it now".
self.addEventListener('message', (event) => {
  if (event.data === 'skip-waiting') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    // A link's query and fragment do not name another file: the page reads them itself.
    const hit = (await cache.match(request, { ignoreSearch: true }))
      ?? (request.mode === 'navigate' ? await cache.match('./') : undefined);
    return hit ?? fetch(request);
  })());
});
