/** An exported file as text: YAML documents separated by `---`, or JSON (an array when the file holds several documents). */
import { stringify } from 'yaml';
import type { ExportedFile } from './types.ts';

export function renderFile(file: ExportedFile): string {
  if (file.format === 'json') return `${JSON.stringify(file.documents.length === 1 ? file.documents[0] : file.documents, null, 2)}\n`;
  return file.documents.map((doc) => stringify(doc, { lineWidth: 0 })).join('---\n');
}
