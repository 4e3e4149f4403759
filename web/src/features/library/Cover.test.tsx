import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AlbumSummary } from '../../lib/api';
import { jsonResponse, song } from '../../test/fixtures';
import { PlayerBar } from '../player/PlayerBar';
import { player } from '../player/store';
import { AlbumsPage } from './AlbumsPage';
import { Cover } from './Cover';
import { groupAlbums } from './derive';

const SHA = 'ab'.repeat(32);
const OTHER = 'cd'.repeat(32);

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function album(i: number, over: Partial<AlbumSummary> = {}): AlbumSummary {
  return {
    album_id: i.toString(16).padStart(16, '0'),
    title: `Album ${i}`,
    album_artist: `Artist ${i}`,
    year: 2020,
    song_count: 3,
    duration_ms: 540_000,
    created_at_ms: 1_700_000_000_000 + i,
    ...over,
  };
}

describe('cover', () => {
  it('is the picture at /music/covers/{sha256}, 1x and 2x, lazy, with its box reserved', () => {
    render(<Cover albumKey="a1" title="Abbey Road" cover={SHA} size="lg" />);
    const img = screen.getByTestId('cover');
    expect(img.tagName).toBe('IMG');
    expect(img.getAttribute('data-cover')).toBe(SHA);
    expect(img.getAttribute('src')).toBe(`/music/covers/${SHA}?size=256`);
    expect(img.getAttribute('srcset')).toBe(`/music/covers/${SHA}?size=256 1x, /music/covers/${SHA}?size=512 2x`);
    expect(img.getAttribute('alt')).toBe('Abbey Road');
    expect(img.getAttribute('loading')).toBe('lazy');
    expect(img.getAttribute('decoding')).toBe('async');
    expect(img.getAttribute('width')).toBe('200');
    expect(img.getAttribute('height')).toBe('200');
  });

  it('asks for the small sizes in a small box', () => {
    render(<Cover albumKey="a1" title="Abbey Road" cover={SHA} size="sm" />);
    const img = screen.getByTestId('cover');
    expect(img.getAttribute('srcset')).toBe(`/music/covers/${SHA}?size=64 1x, /music/covers/${SHA}?size=128 2x`);
    expect(img.getAttribute('width')).toBe('48');
  });

  it('is the placeholder without a cover, or with something that is not a SHA-256', () => {
    for (const cover of [undefined, '', 'not-a-sha', '../../cluster/status']) {
      render(<Cover albumKey="a1" title="Abbey Road" cover={cover} />);
      const el = screen.getByTestId('cover');
      expect(el.tagName).toBe('DIV');
      expect(el.getAttribute('role')).toBe('img');
      expect(el.getAttribute('aria-label')).toBe('Abbey Road');
      expect(el.hasAttribute('data-cover')).toBe(false);
      expect(el.textContent).toBe('AR');
      cleanup();
    }
  });

  it('falls back to the placeholder when the picture fails to load, and tries a new picture again', () => {
    const { rerender } = render(<Cover albumKey="a1" title="Abbey Road" cover={SHA} />);
    fireEvent.error(screen.getByTestId('cover'));
    const el = screen.getByTestId('cover');
    expect(el.tagName).toBe('DIV');
    expect(el.getAttribute('aria-label')).toBe('Abbey Road');
    expect(document.querySelector('img')).toBeNull();
    rerender(<Cover albumKey="a1" title="Abbey Road" cover={OTHER} />);
    expect(screen.getByTestId('cover').getAttribute('data-cover')).toBe(OTHER);
  });

  it('names an untitled album in its text alternative', () => {
    render(<Cover albumKey="a1" title="" cover={SHA} />);
    expect(screen.getByTestId('cover').getAttribute('alt')).toBe('Unknown album');
  });
});

describe('covers on the pages', () => {
  it('the album grid shows the picture of an album that has one and the placeholder of one that has not', async () => {
    const albums = [album(1, { cover: SHA }), album(2, { cover: '' }), album(3)];
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => jsonResponse({ items: albums, next_after: '' })),
    );
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <MemoryRouter>
          <AlbumsPage />
        </MemoryRouter>
      </QueryClientProvider>,
    );
    const cards = await screen.findAllByTestId('album-card');
    expect(cards).toHaveLength(3);
    const cover = (title: string) => within(cards.find((c) => c.textContent?.includes(title))!).getByTestId('cover');
    expect(cover('Album 1').tagName).toBe('IMG');
    expect(cover('Album 1').getAttribute('data-cover')).toBe(SHA);
    expect(cover('Album 1').getAttribute('src')).toBe(`/music/covers/${SHA}?size=256`);
    expect(cover('Album 2').tagName).toBe('DIV');
    expect(cover('Album 3').tagName).toBe('DIV');
  });

  it('an album built from songs (a node without the album index) takes the first cover among them', () => {
    const [a] = groupAlbums([song(1, { album: 'X', artist: 'A' }), song(2, { album: 'X', artist: 'A', cover: SHA }), song(3, { album: 'X', artist: 'A', cover: OTHER })]);
    expect(a.cover).toBe(SHA);
    const [b] = groupAlbums([song(4, { album: 'Y', artist: 'A' })]);
    expect(b.cover).toBe('');
  });

  it("the player bar shows the current song's cover", () => {
    // jsdom has no media playback.
    vi.spyOn(HTMLMediaElement.prototype, 'play').mockImplementation(() => Promise.resolve());
    vi.spyOn(HTMLMediaElement.prototype, 'pause').mockImplementation(() => {});
    vi.spyOn(HTMLMediaElement.prototype, 'load').mockImplementation(() => {});
    render(
      <MemoryRouter>
        <PlayerBar />
      </MemoryRouter>,
    );
    const bar = screen.getByTestId('player-bar');
    try {
      act(() => player.playList([song(1, { album: 'With Cover', cover: SHA }), song(2, { album: 'Without' })], 0));
      const img = within(bar).getByTestId('cover');
      expect(img.tagName).toBe('IMG');
      expect(img.getAttribute('data-cover')).toBe(SHA);
      expect(img.getAttribute('src')).toBe(`/music/covers/${SHA}?size=64`);
      expect(img.getAttribute('alt')).toBe('With Cover');
      act(() => player.next());
      expect(within(bar).getByTestId('cover').tagName).toBe('DIV');
    } finally {
      act(() => player.clear());
    }
  });
});
