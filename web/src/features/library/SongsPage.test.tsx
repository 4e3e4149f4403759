import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { act, cleanup, render, screen, waitFor } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { jsonResponse, song } from '../../test/fixtures';
import { SONGS_PAGE } from './queries';
import { ROW_HEIGHT } from './SongList';
import { SongsPage } from './SongsPage';

const TOTAL = 2000;
let requests: string[] = [];

beforeEach(() => {
  requests = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string) => {
      requests.push(url);
      const p = new URL(url, 'http://x').searchParams;
      const limit = Number(p.get('limit'));
      const after = p.get('after') ?? '';
      const start = after ? Number(after.slice(5, 10)) + 1 : 0;
      const items = Array.from({ length: Math.min(limit, TOTAL - start) }, (_, k) => song(start + k));
      const next = start + items.length < TOTAL ? items[items.length - 1].file_id : '';
      return jsonResponse({ items, next_after: next });
    }),
  );
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('songs page', () => {
  it(`scrolled to the end of ${TOTAL} songs it holds a bounded number of rows and fetched one page per request`, async () => {
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <MemoryRouter>
          <SongsPage />
        </MemoryRouter>
      </QueryClientProvider>,
    );
    await screen.findAllByTestId('song-row');
    // jsdom has no layout: scrolling is setting scrollY and telling the page.
    const scrollTo = (rows: number) =>
      act(async () => {
        Object.defineProperty(window, 'scrollY', { value: rows * ROW_HEIGHT, configurable: true });
        window.dispatchEvent(new Event('scroll'));
        await new Promise((r) => setTimeout(r, 20));
      });
    for (let guard = 0; guard < 50; guard++) {
      const loaded = client.getQueryData<{ pages: unknown[] }>(['songs'])?.pages.length ?? 0;
      if (loaded * SONGS_PAGE >= TOTAL) break;
      await scrollTo(loaded * SONGS_PAGE);
      await waitFor(() => expect(requests.length).toBeGreaterThan(loaded));
    }
    await scrollTo(TOTAL);
    await waitFor(() => expect(screen.getAllByTestId('song-row').some((r) => r.textContent?.includes(`Song ${TOTAL - 1}`))).toBe(true));
    expect(requests).toHaveLength(TOTAL / SONGS_PAGE);
    const afters = requests.map((u) => new URL(u, 'http://x').searchParams.get('after') ?? '');
    expect(new Set(afters).size).toBe(requests.length); // no page fetched twice
    const rows = screen.getAllByTestId('song-row').length;
    expect(rows).toBeLessThan(100);
    const shown = screen.getAllByTestId('song-row');
    const last = shown[shown.length - 1];
    expect(last.getAttribute('aria-setsize')).toBe(String(TOTAL));
    expect(last.getAttribute('aria-posinset')).toBe(String(TOTAL));
    // 2,000 songs through jsdom take 3-4 s alone, past Vitest's 5 s default on a loaded machine.
  }, 30_000);
});
