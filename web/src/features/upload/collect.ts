// The files of a drop, folders walked recursively, each with its path relative to what was dropped
// (so "Abbey Road/01 - Come Together.mp3" keeps its album folder in the file id).

export interface PickedFile {
  file: File;
  path: string;
}

function hidden(name: string): boolean {
  return name.startsWith('.');
}

function readAll(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  return new Promise((resolve, reject) => {
    const out: FileSystemEntry[] = [];
    // readEntries answers in batches (100 in Chromium) until an empty one.
    const step = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(out);
        else {
          out.push(...batch);
          step();
        }
      }, reject);
    step();
  });
}

async function walk(entry: FileSystemEntry, out: PickedFile[]): Promise<void> {
  if (hidden(entry.name)) return;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ file, path: entry.fullPath.replace(/^\/+/, '') || file.name });
  } else if (entry.isDirectory) {
    const children = await readAll((entry as FileSystemDirectoryEntry).createReader());
    for (const c of children) await walk(c, out);
  }
}

export async function filesFromDataTransfer(dt: DataTransfer): Promise<PickedFile[]> {
  const out: PickedFile[] = [];
  const entries: FileSystemEntry[] = [];
  const items = dt.items ? Array.from(dt.items) : [];
  for (const item of items) {
    if (item.kind !== 'file') continue;
    const entry = typeof item.webkitGetAsEntry === 'function' ? item.webkitGetAsEntry() : null;
    if (entry) entries.push(entry);
    else {
      const f = item.getAsFile();
      if (f && !hidden(f.name)) out.push({ file: f, path: f.name });
    }
  }
  if (entries.length === 0 && out.length === 0) {
    for (const f of Array.from(dt.files ?? [])) if (!hidden(f.name)) out.push({ file: f, path: f.name });
  }
  for (const e of entries) await walk(e, out);
  return out;
}

export function filesFromInput(list: FileList | null): PickedFile[] {
  return Array.from(list ?? [])
    .filter((f) => !hidden(f.name))
    .map((f) => ({ file: f, path: f.webkitRelativePath || f.name }));
}
