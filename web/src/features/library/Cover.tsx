// A placeholder cover until cover art exists: the album's initials on a colour derived from its id,
// the same for an album everywhere. Replaced by the image at /music/covers/... later.
function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

export function initials(title: string): string {
  const words = title.split(/\s+/).filter((w) => /\p{L}|\p{N}/u.test(w));
  const letters = words.slice(0, 2).map((w) => [...w.replace(/^[^\p{L}\p{N}]+/u, '')][0] ?? '');
  return letters.join('').toUpperCase() || '♪';
}

export function Cover({ albumKey, title, size = 'md' }: { albumKey: string; title: string; size?: 'sm' | 'md' | 'lg' }) {
  const h = hash(albumKey);
  const hue = h % 360;
  const hue2 = (hue + 40 + ((h >> 9) % 80)) % 360;
  return (
    <div
      className={`cover cover-${size}`}
      role="img"
      aria-label={title}
      data-testid="cover"
      style={{ background: `linear-gradient(135deg, hsl(${hue} 55% 42%), hsl(${hue2} 60% 28%))` }}
    >
      <span aria-hidden="true">{initials(title)}</span>
    </div>
  );
}
