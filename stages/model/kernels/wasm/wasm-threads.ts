// Multi-threaded tfjs wasm in Node. tfjs ships the SIMD+threads build but never uses it in Node, for the
// reasons found by reading tf-backend-wasm.node.js (v4.22); each has a workaround here, active only while
// the backend initialises:
//
// 1. The flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false when IS_NODE (tfjs issue #3830).
//    -> we set it to true.
// 2. Emscripten starts each pthread with `new Worker(locateFile('...worker.js'))`, and tfjs's locateFile
//    returns a `blob:` URL of the inlined worker script; Node's worker_threads only take file paths
//    (ERR_WORKER_PATH). -> a global `Worker` that Emscripten cannot overwrite, which starts a `blob:` URL's
//    script with `eval: true` (the script text is remembered when the Blob is made).
// 3. The worker then loads the main module from `mainScriptUrlOrBlob`, again a Blob (the factory's
//    source), via importScripts = eval(fs.readFileSync(url)), which cannot read a blob URL; and that source
//    refers to the bundle's closure variables (require$$0 = fs, ...). -> the "load" message carries the source
//    text; the worker evaluates it with those variables defined.
// 4. (Not a failure, a hang:) the started workers keep Node's event loop alive. -> unref'd once loaded.
// 5. The C++ side caps the pool at emscripten_num_logical_cores() / 2, which in Node is os.cpus().length / 2:
//    one thread on a 2-core machine. -> os.cpus() reports 2x the wanted threads during initialisation.
import os from 'node:os';
import { Blob as NodeBlob, type BlobOptions } from 'node:buffer';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';

/**
 * The tfjs wasm bundle's CommonJS closure variables that its factory source refers to (and esbuild's
 * `__require`, when our program is itself bundled, as for the lent GPU machine).
 */
const factoryPrelude =
  'var require$$0=require("fs"),require$$1=require("path"),require$$3=require("perf_hooks"),require$$4=require("os"),' +
  'commonjsGlobal=globalThis,__require=require;';

/** The marker that replaces the factory Blob in the pthread "load" message. */
const factoryMarker = 'tfjs-wasm-factory-source';

type Restore = () => void;

/**
 * Installs the workarounds; `threads` is how many XNNPACK threads the pool should get (1-8).
 * Call the returned function once `tf.setBackend('wasm')` has resolved (the pthread workers are loaded by then).
 */
export function enableWasmThreadsInNode(threads: number): Restore {
  const blobSources = new Map<string, string>(); // blob: URL -> script text
  const started: NodeWorker[] = [];
  const NativeBlob = globalThis.Blob;
  class TextBlob extends NodeBlob {
    readonly sourceText: string | undefined;
    constructor(parts?: ConstructorParameters<typeof NodeBlob>[0], options?: BlobOptions) {
      super(parts ?? [], options);
      this.sourceText = parts?.every((p) => typeof p === 'string') ? parts.join('') : undefined;
    }
  }
  const nativeCreateObjectURL = URL.createObjectURL;
  const patchedCreateObjectURL = (blob: NodeBlob): string => {
    const url = nativeCreateObjectURL(blob as never);
    if (blob instanceof TextBlob && blob.sourceText !== undefined) blobSources.set(url, blob.sourceText);
    return url;
  };

  class BlobScriptWorker extends NodeWorker {
    constructor(script: string | URL, options?: WorkerOptions) {
      const source = typeof script === 'string' ? blobSources.get(script) : undefined;
      if (source === undefined) {
        super(script, options);
        return;
      }
      // Runs before the Emscripten worker script's own listener: keep the factory source the "load" message carries.
      const before = `require("worker_threads").parentPort.on("message",d=>{if(d&&d.factorySource)globalThis.__tfjsFactorySource=d.factorySource;});`;
      const after =
        `;{const load=globalThis.importScripts;globalThis.importScripts=f=>f===${JSON.stringify(factoryMarker)}` +
        `?(0,eval)(${JSON.stringify(factoryPrelude)}+globalThis.__tfjsFactorySource):load(f);}`;
      super(before + source + after, { ...options, eval: true });
      started.push(this);
    }

    override postMessage(message: unknown, transferList?: Parameters<NodeWorker['postMessage']>[1]): void {
      const load = message as { cmd?: string; urlOrBlob?: unknown } | null;
      if (load?.cmd === 'load' && load.urlOrBlob instanceof TextBlob) {
        message = { ...load, urlOrBlob: factoryMarker, factorySource: load.urlOrBlob.sourceText };
      }
      super.postMessage(message, transferList);
    }
  }

  const nativeCpus = os.cpus;
  const hadWorker = Object.prototype.hasOwnProperty.call(globalThis, 'Worker');
  const previousWorker = Object.getOwnPropertyDescriptor(globalThis, 'Worker');
  globalThis.Blob = TextBlob as typeof globalThis.Blob;
  URL.createObjectURL = patchedCreateObjectURL as typeof URL.createObjectURL;
  // Emscripten assigns globalThis.Worker = worker_threads.Worker when its factory runs; ignore that write.
  Object.defineProperty(globalThis, 'Worker', { configurable: true, get: () => BlobScriptWorker, set: () => {} });
  const cpu = nativeCpus()[0];
  os.cpus = () => Array.from({ length: 2 * threads }, () => cpu as os.CpuInfo);

  return () => {
    // The pool's threads talk through shared memory, not events: they must not keep Node from exiting.
    for (const worker of started) worker.unref();
    globalThis.Blob = NativeBlob;
    URL.createObjectURL = nativeCreateObjectURL;
    os.cpus = nativeCpus;
    if (hadWorker && previousWorker) Object.defineProperty(globalThis, 'Worker', previousWorker);
    else delete (globalThis as { Worker?: unknown }).Worker;
  };
}
