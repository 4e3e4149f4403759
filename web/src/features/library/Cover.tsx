import { useState } from 'react';
import { t } from '../../i18n';
import { coverSha, coverUrl, type CoverSize } from '../../lib/api';

// An album's cover: the picture at /music/covers/{sha256} when there is one; else (and when it
// fails to load) a placeholder, the album's initials on a colour derived from its id, the same for
// an album everywhere.
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

export type CoverBox = 'sm' | 'md' | 'lg';

// Each box's size in CSS pixels (styles.css; md fills its grid cell, under 320 px wide, so its
// width/height only give the square's ratio) and the picture sizes asked for at 1x and 2x: the
// smallest the node makes that are not blurry there.
export const COVER_BOX: Record<CoverBox, { px: number; x1: CoverSize; x2: CoverSize }> = {
  sm: { px: 48, x1: 64, x2: 128 },
  md: { px: 256, x1: 256, x2: 512 },
  lg: { px: 200, x1: 256, x2: 512 },
};

export function Cover({ albumKey, title, cover, size = 'md' }: { albumKey: string; title: string; cover?: string; size?: CoverBox }) {
  const sha = coverSha(cover);
  // Remembered by sha, so a new picture (the player bar's next song) gets its own try.
  const [failed, setFailed] = useState('');
  const label = title || t.common.unknownAlbum;
  if (sha && failed !== sha) {
    const box = COVER_BOX[size];
    const x1 = coverUrl(sha, box.x1);
    return (
      <img
        className={`cover cover-${size}`}
        src={x1}
        srcSet={`${x1} 1x, ${coverUrl(sha, box.x2)} 2x`}
        alt={label}
        width={box.px}
        height={box.px}
        loading="lazy"
        decoding="async"
        data-testid="cover"
        data-cover={sha}
        onError={() => setFailed(sha)}
      />
    );
  }
  const h = hash(albumKey);
  const hue = h % 360;
  const hue2 = (hue + 40 + ((h >> 9) % 80)) % 360;
  return (
    <div
      className={`cover cover-${size}`}
      role="img"
      aria-label={label}
      data-testid="cover"
      style={{ background: `linear-gradient(135deg, hsl(${hue} 55% 42%), hsl(${hue2} 60% 28%))` }}
    >
      <span aria-hidden="true">{initials(title)}</span>
    </div>
  );
}
