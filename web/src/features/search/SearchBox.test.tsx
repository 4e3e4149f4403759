import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { jsonResponse, song } from '../../test/fixtures';
import { DEBOUNCE_MS } from './useSearch';
import { SearchBox } from './SearchBox';
import { groupResults, moveActive } from './group';

interface Call {
  url: string;
  signal: AbortSignal;
  resolve: (r: Response) => void;
}

let calls: Call[] = [];

beforeEach(() => {
  calls = [];
  vi.stubGlobal(
    'fetch',
    vi.fn((url: string, init: RequestInit) => {
      return new Promise<Response>((resolve, reject) => {
        const signal = init.signal!;
        signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        calls.push({ url, signal, resolve });
      });
    }),
  );
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function setup() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <MemoryRouter>
        <SearchBox />
      </MemoryRouter>
    </QueryClientProvider>,
  );
  return screen.getByRole('combobox');
}

const sleep = (ms: number) => act(() => new Promise((r) => setTimeout(r, ms)));
const q = (url: string) => new URL(url, 'http://x').searchParams.get('q');

describe('search as you type', () => {
  it('sends one request for a burst of typing, after the debounce', async () => {
    const input = setup();
    input.focus();
    fireEvent.change(input, { target: { value: 'b' } });
    fireEvent.change(input, { target: { value: 'be' } });
    fireEvent.change(input, { target: { value: 'bea' } });
    await sleep(DEBOUNCE_MS / 2);
    expect(calls).toHaveLength(0);
    await waitFor(() => expect(calls).toHaveLength(1));
    expect(q(calls[0].url)).toBe('bea');
    expect(calls[0].url.startsWith('/music/search?')).toBe(true);
  });

  it('aborts a request superseded by newer typing and shows only the newest answer', async () => {
    const input = setup();
    input.focus();
    fireEvent.change(input, { target: { value: 'beat' } });
    await waitFor(() => expect(calls).toHaveLength(1));
    fireEvent.change(input, { target: { value: 'beatles' } });
    await waitFor(() => expect(calls).toHaveLength(2));
    await waitFor(() => expect(calls[0].signal.aborted).toBe(true));
    expect(calls[1].signal.aborted).toBe(false);
    await act(async () => {
      calls[1].resolve(jsonResponse({ total: 1, items: [song(1, { title: 'Come Together', artist: 'The Beatles', album: 'Abbey Road' })], next_cursor: '' }));
    });
    const options = await screen.findAllByRole('option');
    expect(options.map((o) => o.textContent)).toEqual(['Come Together — The Beatles', 'The Beatles', 'Abbey Road — The Beatles']);
    expect(screen.getByRole('group', { name: 'Songs' })).toBeTruthy();
  });

  it('arrow keys move the active option and Escape closes the list', async () => {
    const input = setup();
    input.focus();
    fireEvent.change(input, { target: { value: 'x' } });
    await waitFor(() => expect(calls).toHaveLength(1));
    await act(async () => {
      calls[0].resolve(jsonResponse({ total: 2, items: [song(1), song(2)], next_cursor: '' }));
    });
    await screen.findAllByRole('option');
    fireEvent.keyDown(input, { key: 'ArrowDown' });
    fireEvent.keyDown(input, { key: 'ArrowDown' });
    const active = input.getAttribute('aria-activedescendant');
    expect(active).toBeTruthy();
    expect(document.getElementById(active!)?.getAttribute('aria-selected')).toBe('true');
    expect(document.getElementById(active!)?.textContent).toContain('Song 2');
    fireEvent.keyDown(input, { key: 'Escape' });
    expect(screen.queryByRole('listbox')).toBeNull();
    expect(input.getAttribute('aria-expanded')).toBe('false');
  });
});

describe('grouping', () => {
  it('derives artists and albums from the ranked song hits', () => {
    const hits = [
      song(1, { artist: 'B', album: 'Y' }),
      song(2, { artist: 'A', album: 'X' }),
      song(3, { artist: 'B', album: 'Y' }),
      song(4, { artist: 'C', album: 'Hits', album_artist: 'Various Artists', compilation: true }),
    ];
    const g = groupResults(hits);
    expect(g.artists.map((o) => (o.kind === 'artist' ? o.artist.name : ''))).toEqual(['B', 'A', 'Various Artists', 'C']);
    expect(g.albums.map((o) => (o.kind === 'album' ? `${o.album.title}/${o.album.album_artist}/${o.album.song_count}` : ''))).toEqual(['Y/B/2', 'X/A/1', 'Hits/Various Artists/1']);
    expect(g.flat).toHaveLength(g.songs.length + g.artists.length + g.albums.length);
  });

  it('wraps the active option', () => {
    expect(moveActive(-1, 1, 3)).toBe(0);
    expect(moveActive(-1, -1, 3)).toBe(2);
    expect(moveActive(2, 1, 3)).toBe(0);
    expect(moveActive(0, -1, 3)).toBe(2);
    expect(moveActive(0, 1, 0)).toBe(-1);
  });
});
