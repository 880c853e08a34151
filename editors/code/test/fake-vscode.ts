// A small stand-in for the `vscode` module: records what the commands show and lets a test
// script the user's answers (quick pick choice, input box text) and the files on disk.

type Listener<T> = (v: T) => unknown;

class Emitter<T> {
  private listeners: Listener<T>[] = [];
  event = (l: Listener<T>) => {
    this.listeners.push(l);
    return { dispose: () => (this.listeners = this.listeners.filter((x) => x !== l)) };
  };
  fire(v: T) {
    for (const l of this.listeners) l(v);
  }
}

export class Position {
  constructor(public line: number, public character: number) {}
}

export class Range {
  start: Position;
  end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    if (typeof a === "number") {
      this.start = new Position(a, b as number);
      this.end = new Position(c!, d!);
    } else {
      this.start = a;
      this.end = b as Position;
    }
  }
  get isEmpty() {
    return this.start.line === this.end.line && this.start.character === this.end.character;
  }
}

export class Selection extends Range {
  get active() {
    return this.end;
  }
}

export class Uri {
  constructor(public scheme: string, public path: string) {}
  static parse(s: string) {
    const m = /^([a-z]+):\/\/(.*)$/.exec(s);
    return m ? new Uri(m[1], m[2]) : new Uri("file", s);
  }
  static file(p: string) {
    return new Uri("file", p);
  }
  static joinPath(u: Uri, ...parts: string[]) {
    return new Uri(u.scheme, [u.path, ...parts].join("/"));
  }
  get fsPath() {
    return this.path;
  }
  toString() {
    return `${this.scheme}://${this.path}`;
  }
}

export class CancellationTokenSource {
  token = { isCancellationRequested: false, onCancellationRequested: new Emitter<void>().event };
  cancel() {
    this.token.isCancellationRequested = true;
  }
  dispose() {}
}

export class ThemeColor {
  constructor(public id: string) {}
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export class FakeQuickPick<T> {
  items: T[] = [];
  selectedItems: T[] = [];
  activeItems: T[] = [];
  value = "";
  title = "";
  placeholder = "";
  busy = false;
  matchOnDescription = false;
  visible = false;
  private changeValue = new Emitter<string>();
  private accept = new Emitter<void>();
  private hideE = new Emitter<void>();
  onDidChangeValue = this.changeValue.event;
  onDidAccept = this.accept.event;
  onDidHide = this.hideE.event;
  show() {
    this.visible = true;
    ui.quickPicks.push(this as FakeQuickPick<unknown>);
  }
  hide() {
    if (!this.visible) return;
    this.visible = false;
    this.hideE.fire();
  }
  dispose() {}
  /** Test side: the user types. */
  type(v: string) {
    this.value = v;
    this.changeValue.fire(v);
  }
  /** Test side: the user presses Enter on item i. */
  pick(i: number) {
    this.selectedItems = [this.items[i]];
    this.accept.fire();
  }
}

export interface FakeDocument {
  uri: Uri;
  getText(r?: Range): string;
  lineAt(line: number): { range: Range };
}

export const ui = {
  messages: [] as { level: string; text: string }[],
  quickPicks: [] as FakeQuickPick<unknown>[],
  shownPicks: [] as { items: any[]; options: any }[],
  /** Which item showQuickPick answers with (index, or a function choosing one); undefined = Esc. */
  pickAnswer: undefined as undefined | number | ((items: any[]) => any),
  inputAnswer: undefined as string | undefined,
  inputOptions: undefined as any,
  opened: [] as { uri: string; selection?: Range }[],
  untitled: [] as { language?: string; content?: string }[],
  files: new Map<string, string>(),
  clipboard: "",
  reset() {
    this.messages = [];
    this.quickPicks = [];
    this.shownPicks = [];
    this.pickAnswer = undefined;
    this.inputAnswer = undefined;
    this.inputOptions = undefined;
    this.opened = [];
    this.untitled = [];
    this.files = new Map();
    this.clipboard = "";
    window.activeTextEditor = undefined;
    workspace.workspaceFolders = undefined;
    env.appName = "Visual Studio Code";
  },
};

function message(level: string) {
  return (text: string, ..._items: unknown[]) => {
    ui.messages.push({ level, text });
    return Promise.resolve(undefined);
  };
}

export const window = {
  activeTextEditor: undefined as undefined | { document: FakeDocument; selection: Selection },
  showInformationMessage: message("info"),
  showWarningMessage: message("warning"),
  showErrorMessage: message("error"),
  createQuickPick: <T>() => new FakeQuickPick<T>(),
  showQuickPick: async (items: any[] | Promise<any[]>, options?: any) => {
    const list = await items;
    ui.shownPicks.push({ items: list, options });
    const a = ui.pickAnswer;
    if (a === undefined) return undefined;
    return typeof a === "number" ? list[a] : a(list);
  },
  showInputBox: async (options?: any) => {
    ui.inputOptions = options;
    return ui.inputAnswer;
  },
  showTextDocument: async (doc: { uri?: Uri }, options?: { selection?: Range }) => {
    ui.opened.push({ uri: String(doc.uri), selection: options?.selection });
    return {};
  },
  withProgress: async (_opts: unknown, task: () => Promise<unknown>) => task(),
};

export const workspace = {
  workspaceFolders: undefined as undefined | { uri: Uri; name: string; index: number }[],
  openTextDocument: async (arg: Uri | { language?: string; content?: string }) => {
    if (arg instanceof Uri) return { uri: arg };
    ui.untitled.push(arg);
    return { uri: new Uri("untitled", "Untitled-1") };
  },
  fs: {
    readFile: async (u: Uri) => {
      const text = ui.files.get(u.path);
      if (text === undefined) throw new Error(`ENOENT ${u.path}`);
      return new TextEncoder().encode(text);
    },
    writeFile: async (u: Uri, data: Uint8Array) => {
      ui.files.set(u.path, new TextDecoder().decode(data));
    },
  },
};

export const env = {
  appName: "Visual Studio Code",
  clipboard: {
    writeText: async (t: string) => {
      ui.clipboard = t;
    },
  },
};

export const commands = {
  executeCommand: async (..._args: unknown[]) => undefined,
  registerCommand: (_id: string, _f: unknown) => ({ dispose() {} }),
};
