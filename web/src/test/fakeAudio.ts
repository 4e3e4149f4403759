// Enough of an <audio> element for the engine: events, src, currentTime, play/pause/load.
export class FakeAudio extends EventTarget {
  src = '';
  currentTime = 0;
  volume = 1;
  muted = false;
  paused = true;
  ended = false;
  error: MediaError | null = null;
  duration = NaN;
  playbackRate = 1;
  preload = '';
  loads = 0;
  plays = 0;
  play() {
    this.plays++;
    this.paused = false;
    return Promise.resolve();
  }
  pause() {
    this.paused = true;
  }
  load() {
    this.loads++;
    this.currentTime = 0;
  }
  removeAttribute(name: string) {
    if (name === 'src') this.src = '';
  }
  fire(type: string) {
    this.dispatchEvent(new Event(type));
  }
}
