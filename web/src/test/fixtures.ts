import type { Song } from '../lib/api';

export function song(i: number, over: Partial<Song> = {}): Song {
  const id = `song-${String(i).padStart(5, '0')}.mp3`;
  return {
    file_id: id,
    title: `Song ${i}`,
    artist: `Artist ${i % 7}`,
    album: `Album ${i % 13}`,
    file_name: id,
    content_type: 'audio/mpeg',
    track: (i % 12) + 1,
    year: 2000 + (i % 20),
    duration_ms: 180_000,
    size_bytes: 1000,
    sha256: i.toString(16).padStart(64, '0'),
    created_at_ms: 1_700_000_000_000 + i,
    stream_url: `/music/stream/${id}?sha256=${i.toString(16).padStart(64, '0')}`,
    ...over,
  };
}

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
