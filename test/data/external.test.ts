import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, existsSync, writeFileSync, symlinkSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { stagesCommand, sharedData } from '../helpers/paths.js';
import { render } from '../imaging/grid.js';
import { fillPolygon } from '../../stages/data/external-polygon.js';
import { parseAnnotations } from '../../stages/data/external-annotations.js';
import { labelRegions, quadrants } from '../../stages/data/external.js';
import { readManifest, readSample } from '../../stages/imaging/dataset.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'external-test-'));
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const square = (x0: number, y0: number, x1: number, y1: number) => [
  { x: x0, y: y0 },
  { x: x1, y: y0 },
  { x: x1, y: y1 },
  { x: x0, y: y1 },
];

/** An Aperio-style annotation file with one polygon per region. */
function annotationXml(regions: { x: number; y: number }[][]): string {
  const body = regions
    .map(
      (vertices, k) =>
        `<Region Id="${k + 1}"><Attributes/><Vertices>${vertices.map((v) => `<Vertex X="${v.x}" Y="${v.y}"/>`).join('')}</Vertices></Region>`,
    )
    .join('\n');
  return `<Annotations MicronsPerPixel="0.25"><Annotation Id="1"><Regions><RegionAttributeHeaders/>\n${body}\n</Regions></Annotation></Annotations>`;
}

function runExternal(args: string[]) {
  const [node, ...rest] = stagesCommand;
  return spawnSync(node!, [...rest, 'external', ...args], { encoding: 'utf8' });
}

test('a polygon fills exactly the pixels whose centres lie inside it', () => {
  // Pixel (c, r) is centred at (c, r): the square from (0.5, 0.5) to (2.5, 2.5) holds centres 1 and 2.
  const target = new Uint16Array(16);
  assert.equal(fillPolygon(target, 4, 4, square(0.5, 0.5, 2.5, 2.5), 1), 4);
  assert.deepEqual(render(target, 4), ['....', '.11.', '.11.', '....']);

  // Right triangle (0,0) (4,0) (0,4): row r spans columns [0, 4 - r); centres on the left/top edges count,
  // on the hypotenuse and the bottom row y = 4 they do not (half-open rule). 4 + 3 + 2 + 1 = 10 pixels.
  const triangle = new Uint16Array(30);
  assert.equal(fillPolygon(triangle, 6, 5, [{ x: 0, y: 0 }, { x: 4, y: 0 }, { x: 0, y: 4 }], 7), 10);
  assert.deepEqual(render(triangle, 6), ['7777..', '777...', '77....', '7.....', '......']);

  // An integer-vertex w x h rectangle fills w·h pixels: two rectangles sharing an edge never share a pixel.
  const rectangles = new Uint16Array(6 * 3);
  fillPolygon(rectangles, 6, 3, square(0, 0, 3, 2), 1);
  fillPolygon(rectangles, 6, 3, square(3, 0, 6, 2), 2);
  assert.deepEqual(render(rectangles, 6), ['111222', '111222', '......']);
});

test('a polygon reaching outside the image is clipped to it and a degenerate one fills nothing', () => {
  const target = new Uint16Array(9);
  assert.equal(fillPolygon(target, 3, 3, square(-5.5, -5.5, 1.5, 0.5), 3), 2);
  assert.deepEqual(render(target, 3), ['33.', '...', '...']);
  assert.equal(fillPolygon(target, 3, 3, [{ x: 0, y: 0 }, { x: 2, y: 2 }], 4), 0);
});

test('later regions overwrite earlier ones, and the overwritten pixels are counted', () => {
  const regions = [
    { id: '1', vertices: square(0, 0, 4, 3) },
    { id: '2', vertices: square(2, 1, 6, 4) },
  ];
  const annotated = labelRegions('x.xml', regions, 6, 4);
  assert.deepEqual(render(annotated.labels.data, 6), ['1111..', '112222', '112222', '..2222']);
  assert.deepEqual(render(annotated.overwritten, 6), ['......', '..11..', '..11..', '......']);
});

test('a quadrant cut through a nucleus gives two separately labelled pieces', () => {
  // 8x4 image, one nucleus across the vertical midline x = 4: it lands in quadrants 0 and 1.
  const annotated = labelRegions('x.xml', [{ id: '1', vertices: square(2, 0, 6, 2) }], 8, 4);
  const image = { width: 8, height: 4, channels: 3 as const, data: new Uint8Array(8 * 4 * 3).map((_, i) => i % 256) };
  const pieces = quadrants('tissue', image, annotated);
  assert.deepEqual(pieces.map((p) => p.id), ['tissue_0', 'tissue_1', 'tissue_2', 'tissue_3']);
  assert.deepEqual(render(pieces[0]!.labels.data, 4), ['..11', '..11']);
  assert.deepEqual(render(pieces[1]!.labels.data, 4), ['11..', '11..']);
  assert.deepEqual(pieces.map((p) => p.labels.count), [1, 1, 0, 0]);
  // The top-right piece's first pixel is the source image's pixel (4, 0).
  assert.deepEqual([...pieces[1]!.image.data.subarray(0, 3)], [12, 13, 14]);
  // Bottom-left piece starts at row 2 of the source.
  assert.deepEqual([...pieces[2]!.image.data.subarray(0, 3)], [48, 49, 50]);
});

test('a region split in two by a later region becomes two nuclei (8-connected relabelling)', () => {
  const regions = [
    { id: '1', vertices: square(0, 0, 8, 2) },
    { id: '2', vertices: square(3, 0, 5, 2) },
  ];
  const pieces = quadrants('t', { width: 8, height: 4, channels: 3, data: new Uint8Array(96) }, labelRegions('x.xml', regions, 8, 4));
  assert.deepEqual(render(pieces[0]!.labels.data, 4), ['1112', '1112']);
  assert.deepEqual(render(pieces[1]!.labels.data, 4), ['1222', '1222']);
});

test('only the first Regions block counts, and a bad vertex names the file and region', () => {
  const xml =
    '<Annotations><Annotation><Regions><Region Id="7"><Vertices><Vertex X="1" Y="2"/><Vertex X="3" Y="2"/><Vertex X="3" Y="4"/></Vertices></Region></Regions></Annotation>' +
    '<Annotation><Regions><Region Id="8"><Vertices><Vertex X="9" Y="9"/></Vertices></Region></Regions></Annotation></Annotations>';
  assert.deepEqual(parseAnnotations('a.xml', xml), [{ id: '7', vertices: [{ x: 1, y: 2 }, { x: 3, y: 2 }, { x: 3, y: 4 }] }]);
  assert.throws(
    () => parseAnnotations('b.xml', '<Annotations><Annotation><Regions><Region Id="3"><Vertices><Vertex X="1" Y="oops"/></Vertices></Region></Regions></Annotation></Annotations>'),
    /b\.xml: Region 3, Vertex 1: Y="oops" is not a number/,
  );
});

/** A tiny external-data layout: 8x8 PNG tissue images and their XML files. */
async function tinyLayout(xmlFor: Record<string, string | undefined>): Promise<{ images: string; annotations: string; root: string }> {
  const root = tempDir();
  const images = join(root, 'tissue_images');
  const annotations = join(root, 'annotations');
  mkdirSync(images);
  mkdirSync(annotations);
  for (const [name, xml] of Object.entries(xmlFor)) {
    await sharp(new Uint8Array(8 * 8 * 3).fill(200), { raw: { width: 8, height: 8, channels: 3 } }).tiff().toFile(join(images, `${name}.tif`));
    if (xml !== undefined) writeFileSync(join(annotations, `${name}.xml`), xml);
  }
  return { images, annotations, root };
}

test('the stage writes four quadrant samples per annotated image and skips an image without XML', async () => {
  const layout = await tinyLayout({ a: annotationXml([square(2, 2, 6, 6)]), b: undefined });
  const out = join(layout.root, 'out');
  const result = runExternal(['--images', layout.images, '--annotations', layout.annotations, '--out', out]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /warning: .*b\.tif: no annotations/);
  const manifest = await readManifest(out);
  assert.deepEqual(manifest.map((s) => [s.id, s.width, s.height, s.nuclei, s.source]), [
    ['a_0', 4, 4, 1, 'external'],
    ['a_1', 4, 4, 1, 'external'],
    ['a_2', 4, 4, 1, 'external'],
    ['a_3', 4, 4, 1, 'external'],
  ]);
  const sample = await readSample(out, 'a_3');
  assert.deepEqual(render(sample.labels.data, 4), ['11..', '11..', '....', '....']);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.equal(report.skippedWithoutAnnotations, 1);
  assert.equal(report.samples, 4);
});

for (const [what, xml, message] of [
  ['corrupt XML', '<Annotations><Annotation><Regions><Region>', /bad\.xml:\d+:\d+: not well-formed XML/],
  ['an XML without regions', '<Annotations><Annotation><Regions></Regions></Annotation></Annotations>', /bad\.xml: no <Region>/],
] as const) {
  test(`${what} is an error naming the file, exit code 1, and no output`, async () => {
    const layout = await tinyLayout({ good: annotationXml([square(1, 1, 3, 3)]), bad: xml });
    const out = join(layout.root, 'out');
    const result = runExternal(['--images', layout.images, '--annotations', layout.annotations, '--out', out]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, message);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(layout.root).sort(), ['annotations', 'tissue_images']);
  });
}

const external = join(sharedData, 'external_data');
test(
  'two real H&E images become eight 500x500 pieces with hundreds of nuclei',
  { skip: existsSync(external) ? false : `real DSB2018 data not found at ${external}` },
  async () => {
    const root = tempDir();
    const images = join(root, 'tissue_images');
    mkdirSync(images);
    const names = readdirSync(join(external, 'tissue_images')).sort().slice(0, 2);
    for (const name of names) symlinkSync(join(external, 'tissue_images', name), join(images, name));
    const out = join(root, 'out');
    const result = runExternal(['--images', images, '--annotations', join(external, 'annotations'), '--out', out]);
    assert.equal(result.status, 0, result.stderr);
    const manifest = await readManifest(out);
    assert.equal(manifest.length, 8);
    for (const info of manifest) {
      assert.deepEqual([info.width, info.height, info.channels, info.source], [500, 500, 3, 'external']);
      assert.ok(info.nuclei >= 30, `${info.id} has only ${info.nuclei} nuclei`);
    }
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    // Quadrant cuts only add pieces; overwriting can remove a few whole regions.
    assert.ok(report.nuclei >= report.regions * 0.95, JSON.stringify(report));
    const sample = await readSample(out, manifest[0]!.id);
    let labelled = 0;
    for (const v of sample.labels.data) if (v !== 0) labelled++;
    assert.ok(labelled > 0.05 * 500 * 500 && labelled < 0.6 * 500 * 500, `${labelled} labelled pixels`);
  },
);
