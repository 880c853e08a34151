//! Data-driven chunker tests: fixture text in, `(symbol, kind, start, end)` out, with the
//! structural invariants checked on every result.

use super::*;
use ChunkKind::*;

type Row = (Option<&'static str>, ChunkKind, u32, u32);

fn opts(max_lines: u32, min_lines: u32) -> ChunkOptions {
    ChunkOptions {
        max_lines,
        min_lines,
    }
}

/// Raw strings in this file start with a newline for readability; it is not part of the file.
fn fx(s: &str) -> &str {
    s.strip_prefix('\n').unwrap_or(s)
}

/// Runs the chunker without the panic guard (a panic must fail the test), checks the
/// invariants, and compares with the public entry point.
fn run(lang: Language, text: &str, o: &ChunkOptions) -> Vec<ChunkDraft> {
    let chunks = if text.trim().is_empty() {
        Vec::new()
    } else {
        chunk_impl(lang, text, Limits::new(o)).0
    };
    check_invariants(text, o, &chunks);
    if text.len() < 64 * 1024 {
        assert_eq!(chunks, chunk_file(lang, text, o));
    }
    chunks
}

fn rows(chunks: &[ChunkDraft]) -> Vec<(Option<String>, ChunkKind, u32, u32)> {
    chunks
        .iter()
        .map(|c| (c.symbol.clone(), c.kind, c.start_line, c.end_line))
        .collect()
}

#[track_caller]
fn expect(lang: Language, text: &str, o: ChunkOptions, want: &[Row]) {
    let got = rows(&run(lang, text, &o));
    let want: Vec<_> = want
        .iter()
        .map(|(s, k, a, b)| (s.map(str::to_string), *k, *a, *b))
        .collect();
    if got != want {
        let mut msg = String::from("chunks differ\n got:\n");
        for r in &got {
            msg.push_str(&format!(
                "    ({:?}, {:?}, {}, {}),\n",
                r.0.as_deref(),
                r.1,
                r.2,
                r.3
            ));
        }
        msg.push_str(" want:\n");
        for r in &want {
            msg.push_str(&format!(
                "    ({:?}, {:?}, {}, {}),\n",
                r.0.as_deref(),
                r.1,
                r.2,
                r.3
            ));
        }
        panic!("{msg}");
    }
}

/// Sorted, non-overlapping, in range, ≤ max lines, ≤ the byte cap, content = those lines,
/// no blank chunk, every non-blank line covered.
#[track_caller]
fn check_invariants(text: &str, o: &ChunkOptions, chunks: &[ChunkDraft]) {
    if text.trim().is_empty() {
        assert!(chunks.is_empty(), "blank text must give no chunks");
        return;
    }
    let raw: Vec<&str> = text.split('\n').collect();
    let n = text.lines().count() as u32;
    let max = o.max_lines.max(1);
    let mut covered = vec![false; n as usize + 1];
    let mut prev_end = 0;
    for c in chunks {
        let (s, e) = (c.start_line, c.end_line);
        assert!(s >= 1 && s <= e && e <= n, "range {s}-{e} outside 1..={n}");
        assert!(
            s > prev_end,
            "chunk {s}-{e} overlaps or precedes the previous one (ends {prev_end})"
        );
        assert!(e - s < max, "chunk {s}-{e} longer than {max} lines");
        assert!(
            c.content.len() <= MAX_CHUNK_BYTES,
            "chunk {s}-{e} has {} bytes",
            c.content.len()
        );
        let mut want = raw[(s - 1) as usize..e as usize].join("\n");
        if (e as usize) < raw.len() && want.ends_with('\r') {
            want.pop();
        }
        if want.len() <= MAX_CHUNK_BYTES {
            assert_eq!(c.content, want, "content of {s}-{e}");
        } else {
            assert!(want.starts_with(&c.content) && c.content.len() + 4 > MAX_CHUNK_BYTES);
        }
        assert!(!c.content.trim().is_empty(), "blank chunk {s}-{e}");
        for l in s..=e {
            covered[l as usize] = true;
        }
        prev_end = e;
    }
    for (i, l) in text.lines().enumerate() {
        assert!(
            l.trim().is_empty() || covered[i + 1],
            "line {} is in no chunk: {l:?}",
            i + 1
        );
    }
}

// ---------------------------------------------------------------------------------------
// Rust

const RUST: &str = r#"
//! Crate docs.
use std::fmt;

/// A point.
#[derive(Debug, Clone)]
pub struct Point {
    x: i32,
    y: i32,
}

impl Point {
    /// Makes one.
    pub fn new(x: i32, y: i32) -> Self {
        Point { x, y }
    }

    fn norm(&self) -> i32 {
        self.x.abs() + self.y.abs()
    }
}

impl<T> fmt::Display for Wrapper<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w")
    }
}

pub trait Shape {
    fn area(&self) -> f64;
    fn name(&self) -> String {
        "shape".into()
    }
}

pub enum Color {
    Red,
    Green,
}

const LIMIT: u32 = 10;
pub const TABLE: [u8; 4] = [
    1, 2,
    3, 4,
];

type Id = u64;

macro_rules! square {
    ($x:expr) => { $x * $x };
}

// helper
fn helper() -> u32 { 42 }

mod tests {
    use super::*;
    #[test]
    fn works() { assert_eq!(helper(), 42); }
}
"#;

#[test]
fn rust_items() {
    expect(
        Language::Rust,
        fx(RUST),
        opts(80, 1),
        &[
            (None, Block, 1, 2),
            (Some("Point"), Struct, 4, 9),
            (Some("Point"), Impl, 11, 20),
            (Some("Wrapper"), Impl, 22, 26),
            (Some("Shape"), Trait, 28, 33),
            (Some("Color"), Enum, 35, 38),
            (None, Block, 40, 40),
            (Some("TABLE"), Constant, 41, 44),
            (None, Block, 46, 46),
            (Some("square"), Function, 48, 50),
            (Some("helper"), Function, 52, 53),
            (Some("tests"), Module, 55, 59),
        ],
    );
}

#[test]
fn rust_containers_open_when_too_big() {
    expect(
        Language::Rust,
        fx(RUST),
        opts(5, 1),
        &[
            (None, Block, 1, 2),
            // A 6-line struct is split into two windows that keep symbol and kind.
            (Some("Point"), Struct, 4, 6),
            (Some("Point"), Struct, 7, 9),
            (Some("Point"), Impl, 11, 11),
            (Some("Point::new"), Method, 12, 15),
            (Some("Point::norm"), Method, 17, 19),
            (Some("Point"), Impl, 20, 20),
            (Some("Wrapper"), Impl, 22, 26),
            (Some("Shape"), Trait, 28, 28),
            (Some("Shape::area"), Method, 29, 29),
            (Some("Shape::name"), Method, 30, 32),
            (Some("Shape"), Trait, 33, 33),
            (Some("Color"), Enum, 35, 38),
            (None, Block, 40, 40),
            (Some("TABLE"), Constant, 41, 44),
            (None, Block, 46, 46),
            (Some("square"), Function, 48, 50),
            (Some("helper"), Function, 52, 53),
            (Some("tests"), Module, 55, 59),
        ],
    );
}

#[test]
fn rust_default_options_merge_small_chunks() {
    expect(
        Language::Rust,
        fx(RUST),
        ChunkOptions::default(),
        &[
            // The 2 glue lines grow into the struct that follows.
            (Some("Point"), Struct, 1, 9),
            (Some("Point"), Impl, 11, 20),
            (Some("Wrapper"), Impl, 22, 26),
            (Some("Shape"), Trait, 28, 33),
            (Some("Color"), Enum, 35, 38),
            (Some("TABLE"), Constant, 40, 44),
            (Some("square"), Function, 46, 50),
            // `helper` (2 lines) grows into the module; the module is the larger named member.
            (Some("tests"), Module, 52, 59),
        ],
    );
}

#[test]
fn rust_item_macros_are_looked_into() {
    let text = fx(r#"
cfg_feature! {
    /// Documented.
    pub fn inside() -> u32 {
        1
    }

    impl Thing {
        fn m(&self) {}
    }
}

cfg_if! {
    if #[cfg(unix)] {
        fn a() {}
    } else {
        fn b() {}
    }
}

impl Big {
    fn first(&self) {}

    cfg_rt! {
        pub fn spawn(&self) {
            todo!()
        }
    }
}
"#);
    expect(
        Language::Rust,
        text,
        opts(80, 1),
        &[
            (None, Block, 1, 1),
            (Some("inside"), Function, 2, 5),
            (Some("Thing"), Impl, 7, 9),
            (None, Block, 10, 18),
            (Some("Big"), Impl, 20, 28),
        ],
    );
    expect(
        Language::Rust,
        text,
        opts(5, 1),
        &[
            (None, Block, 1, 1),
            (Some("inside"), Function, 2, 5),
            (Some("Thing"), Impl, 7, 9),
            (None, Block, 10, 14),
            (None, Block, 15, 18),
            (Some("Big"), Impl, 20, 20),
            (Some("Big::first"), Method, 21, 21),
            (Some("Big"), Impl, 23, 23),
            (Some("Big::spawn"), Method, 24, 26),
            (Some("Big"), Impl, 27, 28),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Python

const PYTHON: &str = r#"
"""Module docstring."""
import os
from typing import List

# Decorated function.
@cache
@other(1)
def compute(x):
    """Doc."""
    return x * 2


class Greeter(Base):
    """A greeter."""

    greeting = "hi"

    def __init__(self, name):
        self.name = name

    @staticmethod
    def make():
        return Greeter("x")

    class Inner:
        def deep(self):
            pass


SETTINGS = {
    "a": 1,
    "b": 2,
}

async def fetch():
    await thing()

if __name__ == "__main__":
    compute(1)
"#;

#[test]
fn python_items() {
    expect(
        Language::Python,
        fx(PYTHON),
        opts(80, 1),
        &[
            (None, Block, 1, 3),
            (Some("compute"), Function, 5, 10),
            (Some("Greeter"), Class, 13, 27),
            (Some("SETTINGS"), Constant, 30, 33),
            (Some("fetch"), Function, 35, 36),
            (None, Block, 38, 39),
        ],
    );
}

#[test]
fn python_big_class_is_opened() {
    expect(
        Language::Python,
        fx(PYTHON),
        opts(5, 1),
        &[
            (None, Block, 1, 3),
            (Some("compute"), Function, 5, 7),
            (Some("compute"), Function, 8, 10),
            (Some("Greeter"), Class, 13, 16),
            (Some("Greeter.__init__"), Method, 18, 19),
            (Some("Greeter.make"), Method, 21, 23),
            (Some("Greeter.Inner"), Class, 25, 27),
            (Some("SETTINGS"), Constant, 30, 33),
            (Some("fetch"), Function, 35, 36),
            (None, Block, 38, 39),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// JavaScript / TypeScript / TSX

const JAVASCRIPT: &str = r#"
import React from "react";
const util = require("./util");

/**
 * Adds numbers.
 */
export function add(a, b) {
  return a + b;
}

export default class Counter extends React.Component {
  state = { n: 0 };

  increment = () => {
    this.setState({ n: this.state.n + 1 });
  };

  render() {
    return <button onClick={this.increment}>{this.state.n}</button>;
  }
}

const double = (x) => x * 2;

function* ids() {
  yield 1;
}

module.exports.helper = function () {
  return 1;
};

const CONFIG = {
  debug: true,
  level: 3,
};
"#;

#[test]
fn javascript_items() {
    expect(
        Language::JavaScript,
        fx(JAVASCRIPT),
        opts(80, 1),
        &[
            (None, Block, 1, 2),
            (Some("add"), Function, 4, 9),
            (Some("Counter"), Class, 11, 21),
            (Some("double"), Function, 23, 23),
            (Some("ids"), Function, 25, 27),
            (Some("module.exports.helper"), Function, 29, 31),
            (Some("CONFIG"), Constant, 33, 36),
        ],
    );
    expect(
        Language::JavaScript,
        fx(JAVASCRIPT),
        opts(6, 1),
        &[
            (None, Block, 1, 2),
            (Some("add"), Function, 4, 9),
            (Some("Counter"), Class, 11, 12),
            (Some("Counter.increment"), Method, 14, 16),
            (Some("Counter.render"), Method, 18, 20),
            (Some("Counter"), Class, 21, 21),
            (Some("double"), Function, 23, 23),
            (Some("ids"), Function, 25, 27),
            (Some("module.exports.helper"), Function, 29, 31),
            (Some("CONFIG"), Constant, 33, 36),
        ],
    );
}

const TYPESCRIPT: &str = r#"
import { Injectable } from "@angular/core";

export interface User {
  id: number;
  name: string;
}

export type Handler = (
  req: Request,
) => void;

type Id = string;

export enum Role {
  Admin,
  User,
}

@Injectable()
export abstract class UserService {
  private users: User[] = [];

  constructor(private http: Http) {}

  /** Finds one. */
  find(id: Id): User | undefined {
    return this.users.find((u) => u.id === id);
  }

  abstract remove(id: Id): void;
}

export namespace Utils {
  export function noop(): void {}
}

declare module "lib" {
  export function f(): void;
}

export const handler = async (x: number): Promise<number> => {
  return x;
};
"#;

#[test]
fn typescript_items() {
    expect(
        Language::TypeScript,
        fx(TYPESCRIPT),
        opts(80, 1),
        &[
            (None, Block, 1, 1),
            (Some("User"), Interface, 3, 6),
            (Some("Handler"), Type, 8, 10),
            (None, Block, 12, 12),
            (Some("Role"), Enum, 14, 17),
            (Some("UserService"), Class, 19, 31),
            (Some("Utils"), Module, 33, 35),
            (Some("lib"), Module, 37, 39),
            (Some("handler"), Function, 41, 43),
        ],
    );
    expect(
        Language::TypeScript,
        fx(TYPESCRIPT),
        opts(5, 1),
        &[
            (None, Block, 1, 1),
            (Some("User"), Interface, 3, 6),
            (Some("Handler"), Type, 8, 10),
            (None, Block, 12, 12),
            (Some("Role"), Enum, 14, 17),
            (Some("UserService"), Class, 19, 21),
            (Some("UserService.constructor"), Method, 23, 23),
            (Some("UserService.find"), Method, 25, 28),
            (Some("UserService.remove"), Method, 30, 30),
            (Some("UserService"), Class, 31, 31),
            (Some("Utils"), Module, 33, 35),
            (Some("lib"), Module, 37, 39),
            (Some("handler"), Function, 41, 43),
        ],
    );
}

const TSX: &str = r#"
import React from "react";

interface Props {
  name: string;
}

export function Hello({ name }: Props) {
  return <div className="hello">Hello {name}</div>;
}

export const App = () => (
  <Hello name="world" />
);
"#;

#[test]
fn tsx_items() {
    expect(
        Language::Tsx,
        fx(TSX),
        opts(80, 1),
        &[
            (None, Block, 1, 1),
            (Some("Props"), Interface, 3, 5),
            (Some("Hello"), Function, 7, 9),
            (Some("App"), Function, 11, 13),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Go

const GO: &str = r#"
// Package shapes does geometry.
package shapes

import (
	"fmt"
	"math"
)

// Shape is anything with an area.
type Shape interface {
	Area() float64
}

// Circle is round.
type Circle struct {
	R float64
}

// Area of the circle.
func (c *Circle) Area() float64 {
	return math.Pi * c.R * c.R
}

func (b Box[T]) Size() int { return 0 }

func main() {
	fmt.Println(Circle{R: 1}.Area())
}

type ID = string

const (
	A = iota
	B
)
"#;

#[test]
fn go_items() {
    expect(
        Language::Go,
        fx(GO),
        opts(80, 1),
        &[
            (None, Block, 1, 7),
            (Some("Shape"), Interface, 9, 12),
            (Some("Circle"), Struct, 14, 17),
            (Some("Circle.Area"), Method, 19, 22),
            (Some("Box.Size"), Method, 24, 24),
            (Some("main"), Function, 26, 28),
            (None, Block, 30, 30),
            (None, Constant, 32, 35),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Java

const JAVA: &str = r#"
package com.example;

import java.util.List;

/**
 * A repository.
 */
@Service
public class Repo<T> extends Base implements Store {
    private final List<T> items;

    /** Creates it. */
    public Repo() {
        this.items = new ArrayList<>();
    }

    @Override
    public int size() {
        return items.size();
    }

    static class Node {
        int v;
    }

    enum Mode { A, B }
}

interface Store {
    int size();
    default boolean empty() { return size() == 0; }
}

enum Level {
    LOW, HIGH;
    int code() { return 1; }
}

record Pair(int a, int b) {}
"#;

#[test]
fn java_items() {
    expect(
        Language::Java,
        fx(JAVA),
        opts(80, 1),
        &[
            (None, Block, 1, 3),
            (Some("Repo"), Class, 5, 27),
            (Some("Store"), Interface, 29, 32),
            (Some("Level"), Enum, 34, 37),
            (Some("Pair"), Class, 39, 39),
        ],
    );
    expect(
        Language::Java,
        fx(JAVA),
        opts(6, 1),
        &[
            (None, Block, 1, 3),
            (Some("Repo"), Class, 5, 10),
            (Some("Repo.Repo"), Method, 12, 15),
            (Some("Repo.size"), Method, 17, 20),
            (Some("Repo.Node"), Class, 22, 24),
            (Some("Repo.Mode"), Enum, 26, 26),
            (Some("Repo"), Class, 27, 27),
            (Some("Store"), Interface, 29, 32),
            (Some("Level"), Enum, 34, 37),
            (Some("Pair"), Class, 39, 39),
        ],
    );
    // Enum members live in `enum_body_declarations`.
    expect(
        Language::Java,
        fx(JAVA),
        opts(3, 1),
        &[
            (None, Block, 1, 3),
            (Some("Repo"), Class, 5, 7),
            (Some("Repo"), Class, 8, 10),
            (Some("Repo.Repo"), Method, 12, 13),
            (Some("Repo.Repo"), Method, 14, 15),
            (Some("Repo.size"), Method, 17, 18),
            (Some("Repo.size"), Method, 19, 20),
            (Some("Repo.Node"), Class, 22, 24),
            (Some("Repo.Mode"), Enum, 26, 26),
            (Some("Repo"), Class, 27, 27),
            (Some("Store"), Interface, 29, 29),
            (Some("Store.size"), Method, 30, 30),
            (Some("Store.empty"), Method, 31, 31),
            (Some("Store"), Interface, 32, 32),
            (Some("Level"), Enum, 34, 35),
            (Some("Level.code"), Method, 36, 36),
            (Some("Level"), Enum, 37, 37),
            (Some("Pair"), Class, 39, 39),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// C / C++

const C: &str = r#"
#ifndef SHAPES_H
#define SHAPES_H

#include <stdio.h>

/* A point. */
struct point {
    int x;
    int y;
};

typedef struct {
    double r;
} circle_t;

enum color { RED, GREEN };

static const int primes[] = {
    2, 3, 5,
};

#define SQUARE(x) \
    ((x) * (x))

int area(int w, int h);

// Computes the area.
static inline int *make(int n) {
    return NULL;
}

#ifdef DEBUG
void dump(void) {
    printf("x");
}
#endif

#endif
"#;

#[test]
fn c_items() {
    expect(
        Language::C,
        fx(C),
        opts(80, 1),
        &[
            (None, Block, 1, 4),
            (Some("point"), Struct, 6, 10),
            (Some("circle_t"), Struct, 12, 14),
            (Some("color"), Enum, 16, 16),
            (Some("primes"), Constant, 18, 20),
            (Some("SQUARE"), Function, 22, 23),
            (None, Block, 25, 25),
            (Some("make"), Function, 27, 30),
            (None, Block, 32, 32),
            (Some("dump"), Function, 33, 35),
            (None, Block, 36, 38),
        ],
    );
}

const CPP: &str = r#"
#include <string>

namespace geo {

/// A shape.
class Shape {
public:
    virtual ~Shape() = default;
    virtual double area() const = 0;

    std::string name() const {
        return "shape";
    }

private:
    int id_;
};

template <typename T>
T clamp(T v, T lo, T hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

double Shape::scale(double f) {
    return f;
}

struct Point { int x, y; };

enum class Dir { Up, Down };

}  // namespace geo

extern "C" {
int c_api(void) { return 0; }
}
"#;

#[test]
fn cpp_items() {
    expect(
        Language::Cpp,
        fx(CPP),
        opts(80, 1),
        &[
            (None, Block, 1, 1),
            (Some("geo"), Module, 3, 32),
            (None, Block, 34, 34),
            (Some("c_api"), Function, 35, 35),
            (None, Block, 36, 36),
        ],
    );
    expect(
        Language::Cpp,
        fx(CPP),
        opts(10, 1),
        &[
            (None, Block, 1, 1),
            (Some("geo"), Module, 3, 3),
            (Some("geo::Shape"), Class, 5, 7),
            (Some("geo::Shape::~Shape"), Method, 8, 8),
            (Some("geo::Shape"), Class, 9, 9),
            (Some("geo::Shape::name"), Method, 11, 13),
            (Some("geo::Shape"), Class, 15, 17),
            (Some("geo::clamp"), Function, 19, 22),
            (Some("geo::Shape::scale"), Function, 24, 26),
            (Some("geo::Point"), Struct, 28, 28),
            (Some("geo::Dir"), Enum, 30, 30),
            (Some("geo"), Module, 32, 32),
            (None, Block, 34, 34),
            (Some("c_api"), Function, 35, 35),
            (None, Block, 36, 36),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Prose

const MARKDOWN: &str = r#"
---
title: x
---
Intro text.

# Project

Some words.

```sh
# not a heading
echo hi
```

## Installation ##
Run it.

Usage
=====
Text.

Notes
-----
- item
---
    # indented code, not a heading
#hashtag
"#;

#[test]
fn markdown_sections() {
    expect(
        Language::Markdown,
        fx(MARKDOWN),
        opts(80, 1),
        &[
            (None, Section, 1, 4),
            (Some("Project"), Section, 6, 13),
            (Some("Installation"), Section, 15, 16),
            (Some("Usage"), Section, 18, 20),
            (Some("Notes"), Section, 22, 27),
        ],
    );
    // Long sections are split and keep their heading.
    expect(
        Language::Markdown,
        fx(MARKDOWN),
        opts(4, 1),
        &[
            (None, Section, 1, 4),
            (Some("Project"), Section, 6, 8),
            (Some("Project"), Section, 10, 13),
            (Some("Installation"), Section, 15, 16),
            (Some("Usage"), Section, 18, 20),
            (Some("Notes"), Section, 22, 24),
            (Some("Notes"), Section, 25, 27),
        ],
    );
}

#[test]
fn markdown_edge_headings() {
    let text = concat!(
        "# Überblick 🚀\ntext\n\n",
        "~~~~\n# in tilde fence\n~~~\n# still fenced\n~~~~\n",
        "#\n###### Six ######\nx\n####### seven is text\n",
    );
    expect(
        Language::Markdown,
        text,
        opts(80, 1),
        &[
            (Some("Überblick 🚀"), Section, 1, 8),
            (None, Section, 9, 9),
            (Some("Six"), Section, 10, 12),
        ],
    );
}

const RST: &str = r#"
=======
 Title
=======

Intro.

Install
-------
Do it::

    code
    ----

Usage
~~~~~
Use it.

Short
==
"#;

#[test]
fn rst_sections() {
    expect(
        Language::Rst,
        fx(RST),
        opts(80, 1),
        &[
            (Some("Title"), Section, 1, 5),
            (Some("Install"), Section, 7, 12),
            (Some("Usage"), Section, 14, 19),
        ],
    );
}

const ASCIIDOC: &str = r#"
= Document Title
:toc:

Preamble.

== Section One
Text.

----
== not a heading
----

=== Sub ===
More.
"#;

#[test]
fn asciidoc_sections() {
    expect(
        Language::AsciiDoc,
        fx(ASCIIDOC),
        opts(80, 1),
        &[
            (Some("Document Title"), Section, 1, 4),
            (Some("Section One"), Section, 6, 11),
            (Some("Sub"), Section, 13, 14),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Windows, splitting, merging

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

#[test]
fn text_is_cut_into_even_windows() {
    expect(
        Language::Text,
        &numbered(10),
        opts(4, 1),
        &[
            (None, Block, 1, 4),
            (None, Block, 5, 7),
            (None, Block, 8, 10),
        ],
    );
    expect(
        Language::Text,
        &numbered(8),
        opts(4, 1),
        &[(None, Block, 1, 4), (None, Block, 5, 8)],
    );
    // Blank lines at window edges are dropped.
    expect(
        Language::Text,
        "\n\na\nb\n\n\nc\n\n",
        opts(3, 1),
        &[(None, Block, 3, 4), (None, Block, 7, 7)],
    );
}

#[test]
fn oversized_function_is_split_with_its_symbol() {
    let body: String = (0..23).map(|i| format!("    let v{i} = {i};\n")).collect();
    let text = format!("/// Doc.\nfn big() {{\n{body}}}\n");
    expect(
        Language::Rust,
        &text,
        opts(10, 4),
        &[
            (Some("big"), Function, 1, 9),
            (Some("big"), Function, 10, 18),
            (Some("big"), Function, 19, 26),
        ],
    );
}

#[test]
fn small_chunks_merge_within_scope_only() {
    let text = fx(r#"
use a::b;

fn one() {}
fn two() {
    2
}

impl Big {
    fn m1(&self) {
        1;
        1;
        1;
    }

    fn m2(&self) {}
}
fn after() {}
"#);
    // max 8 opens the 9-line impl. `use` grows into `one` and then `two` (the largest named
    // member). In the impl, the header line grows into m1; m2 and the closing brace merge
    // (tie: the first keeps its symbol) but cannot join m1 without exceeding 8 lines; `after`
    // cannot join the impl's members (another scope): it stays alone.
    expect(
        Language::Rust,
        text,
        opts(8, 4),
        &[
            (Some("two"), Function, 1, 6),
            (Some("Big::m1"), Method, 8, 13),
            (Some("Big::m2"), Method, 15, 16),
            (Some("after"), Function, 17, 17),
        ],
    );
    // Unnamed neighbours of one kind keep it; mixed kinds become Block.
    expect(
        Language::Markdown,
        "a\nb\n",
        opts(80, 4),
        &[(None, Section, 1, 2)],
    );
}

#[test]
fn byte_cap_splits_wide_windows() {
    let line = "x".repeat(1000);
    let text: String = (0..40).map(|_| format!("{line}\n")).collect();
    let chunks = run(Language::Text, &text, &opts(80, 4));
    assert_eq!(
        rows(&chunks),
        vec![
            (None, Block, 1, 16),
            (None, Block, 17, 32),
            (None, Block, 33, 40)
        ]
    );
    // A function too wide for the cap is split by bytes and keeps its symbol.
    let body: String = (0..30)
        .map(|i| format!("    let v{i} = \"{line}\";\n"))
        .collect();
    let text = format!("fn wide() {{\n{body}}}\n");
    let chunks = run(Language::Rust, &text, &opts(80, 4));
    assert!(chunks.len() >= 2);
    assert!(chunks
        .iter()
        .all(|c| c.symbol.as_deref() == Some("wide") && c.kind == Function));
}

// ---------------------------------------------------------------------------------------
// Edge cases

#[test]
fn blank_input_gives_no_chunks() {
    for lang in Language::ALL {
        for text in ["", " ", "\n", "\n\n\n", "  \t \r\n \n", "\u{3000}\n"] {
            assert!(
                run(lang, text, &ChunkOptions::default()).is_empty(),
                "{lang} {text:?}"
            );
        }
    }
}

#[test]
fn no_trailing_newline_and_crlf() {
    let chunks = run(Language::Rust, "fn a() {}\nfn b() {}", &opts(80, 1));
    assert_eq!(
        rows(&chunks),
        vec![
            (Some("a".into()), Function, 1, 1),
            (Some("b".into()), Function, 2, 2)
        ]
    );
    assert_eq!(chunks[1].content, "fn b() {}");

    let text = "use x;\r\n\r\n/// Doc.\r\nfn a() {\r\n    1\r\n}\r\n";
    let chunks = run(Language::Rust, text, &opts(80, 1));
    assert_eq!(
        rows(&chunks),
        vec![(None, Block, 1, 1), (Some("a".into()), Function, 3, 6)]
    );
    assert_eq!(chunks[1].content, "/// Doc.\r\nfn a() {\r\n    1\r\n}");

    let text = "# Title\r\nbody\r\n\r\nSub\r\n---\r\ntext";
    expect(
        Language::Markdown,
        text,
        opts(80, 1),
        &[(Some("Title"), Section, 1, 2), (Some("Sub"), Section, 4, 6)],
    );
    let text = "class A:\r\n    def m(self):\r\n        pass\r\n";
    expect(
        Language::Python,
        text,
        opts(80, 1),
        &[(Some("A"), Class, 1, 3)],
    );
}

#[test]
fn non_ascii_text() {
    let text = "def grüße(名前):\n    return \"héllo ✓\"\n\nclass Ünïcode:\n    pass\n";
    expect(
        Language::Python,
        text,
        opts(80, 1),
        &[
            (Some("grüße"), Function, 1, 2),
            (Some("Ünïcode"), Class, 4, 5),
        ],
    );
    // A very long line of multi-byte chars is cut on a char boundary.
    let text = format!("{}\nnext\n", "é".repeat(20_000));
    for lang in Language::ALL {
        let chunks = run(lang, &text, &opts(80, 4));
        assert!(!chunks.is_empty());
    }
}

#[test]
fn very_long_lines_are_capped() {
    let long = "a".repeat(100_000);
    let filler: String = (0..40).map(|i| format!("    let x{i} = {i};\n")).collect();
    let text = format!("fn f() {{\n    let s = \"{long}\";\n{filler}}}\n");
    let chunks = run(Language::Rust, &text, &opts(80, 4));
    // The long line cannot share a chunk; it is capped, its neighbours are kept whole.
    assert_eq!(
        rows(&chunks),
        vec![
            (Some("f".into()), Function, 1, 1),
            (Some("f".into()), Function, 2, 2),
            (Some("f".into()), Function, 3, 43),
        ]
    );
    assert_eq!(chunks[1].content.len(), MAX_CHUNK_BYTES);
    // Lines averaging over 4 KiB look minified: plain windows, no parse.
    let text = format!("fn f() {{\n    let s = \"{long}\";\n}}\n");
    let chunks = run(Language::Rust, &text, &opts(80, 4));
    assert_eq!(
        rows(&chunks),
        vec![
            (None, Block, 1, 1),
            (None, Block, 2, 2),
            (None, Block, 3, 3)
        ]
    );
    let chunks = run(Language::Text, &long, &opts(80, 4));
    assert_eq!(rows(&chunks), vec![(None, Block, 1, 1)]);
    assert_eq!(chunks[0].content.len(), MAX_CHUNK_BYTES);
}

#[test]
fn minified_javascript_megabyte_line() {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 1_000_000 {
        text.push_str(&format!(
            "function f{i}(a){{return a*{i}}};var v{i}={{k:[1,2,3]}};"
        ));
        i += 1;
    }
    for lang in [Language::JavaScript, Language::TypeScript, Language::Tsx] {
        let t0 = std::time::Instant::now();
        let chunks = run(lang, &text, &ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(rows(&chunks), vec![(None, Block, 1, 1)]);
        assert!(t0.elapsed().as_secs() < 20);
    }
    let text = format!("{text}\n{text}\n");
    let chunks = run(Language::JavaScript, &text, &ChunkOptions::default());
    assert_eq!(chunks.len(), 2);
    // Dense lines of about 3 KiB are parsed: the items sharing a line fold into one.
    let dense: String = text
        .as_bytes()
        .chunks(3000)
        .take(300)
        .map(|c| {
            String::from_utf8_lossy(c)
                .replace(";var", ";\nvar")
                .replacen('\n', "", 20)
                + "\n"
        })
        .collect();
    let chunks = run(Language::JavaScript, &dense, &ChunkOptions::default());
    assert!(chunks.len() > 10);
}

#[test]
fn invalid_syntax_never_panics() {
    let junk = [
        "fn ( {{{ ]]] \n class } def :: <<< >>>\n",
        "}}}}}}\n)))))\n]]]]]\n",
        "class A { def f( { function ] \n#include <\n namespace {",
        "impl for where fn -> => :: #[ #![\n",
        "@@@ $$$ %%% ^^^\n`````\n'''\n\"\"\"\n",
        "/* unterminated comment\nfn a() {}\n",
        "\"unterminated string\nfn b() {}\n",
        "#if\n#ifdef\n#else\n#endif\n#endif\n",
        "\0\0\0\u{1}\u{7f}\n\u{feff}fn x() {}\n",
    ];
    for lang in Language::ALL {
        for text in junk {
            run(lang, text, &opts(80, 4));
            run(lang, text, &opts(1, 0));
            run(lang, text, &opts(2, 5));
        }
    }
}

#[test]
fn error_heavy_parse_falls_back_to_windows() {
    let mut text = String::from("fn ok() {\n    1\n}\n");
    for _ in 0..20 {
        text.push_str("@@ ## $$ ~~ fn ( ] } ) {{ \n");
    }
    let chunks = run(Language::Rust, &text, &opts(10, 1));
    assert!(
        chunks.iter().all(|c| c.kind == Block && c.symbol.is_none()),
        "{:?}",
        rows(&chunks)
    );
    // A small error in a good file keeps the structure.
    let text =
        "fn ok() {\n    1\n}\n\nfn broken() {\n    let x = ;\n}\n\nfn also_ok() {\n    2\n}\n";
    expect(
        Language::Rust,
        text,
        opts(80, 1),
        &[
            (Some("ok"), Function, 1, 3),
            (Some("broken"), Function, 5, 7),
            (Some("also_ok"), Function, 9, 11),
        ],
    );
}

#[test]
fn deeply_nested_code() {
    let depth = 5_000;
    let python: String = (0..300)
        .map(|i| format!("{}def f{i}():\n", " ".repeat(i)))
        .collect();
    let cases = [
        (
            Language::JavaScript,
            format!("{}{}", "{".repeat(depth), "}".repeat(depth)),
        ),
        (
            Language::Rust,
            format!("fn f() {{{}{}}}", "(".repeat(depth), ")".repeat(depth)),
        ),
        (
            Language::C,
            format!(
                "{}int x;\n{}",
                "#ifdef A\n".repeat(300),
                "#endif\n".repeat(300)
            ),
        ),
        (
            Language::Cpp,
            format!(
                "{}int f() {{ return 1; }}\n{}",
                "namespace a {\n".repeat(300),
                "}\n".repeat(300)
            ),
        ),
        (
            Language::Python,
            format!("{python}{}pass\n", " ".repeat(300)),
        ),
        (
            Language::Java,
            format!("{}{}", "class A {\n".repeat(300), "}\n".repeat(300)),
        ),
        (
            Language::Markdown,
            (0..2000)
                .map(|i| format!("{} h{i}\n", "#".repeat(i % 8)))
                .collect(),
        ),
    ];
    for (lang, text) in cases {
        run(lang, &text, &opts(80, 4));
        run(lang, &text, &opts(8, 2));
    }
}

#[test]
fn odd_options_are_normalised() {
    let text = numbered(5);
    // max_lines 0 behaves as 1; min above max is clamped.
    let chunks = run(Language::Text, &text, &opts(0, 0));
    assert_eq!(chunks.len(), 5);
    let chunks = run(Language::Text, &text, &opts(2, 100));
    assert_eq!(
        rows(&chunks),
        vec![
            (None, Block, 1, 2),
            (None, Block, 3, 4),
            (None, Block, 5, 5)
        ]
    );
    run(Language::Rust, fx(RUST), &opts(1, 1));
    run(Language::Rust, fx(RUST), &opts(u32::MAX, u32::MAX));
}

// ---------------------------------------------------------------------------------------
// Property-style: random inputs keep every invariant.

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "fn f() {",
    "}",
    "{",
    "(",
    ")",
    "[",
    "]",
    ";",
    "\n",
    "\n",
    "\n",
    "\r\n",
    "    ",
    "\t",
    "class C:",
    "class K {",
    "def g(self):",
    "    pass",
    "impl T for U {",
    "trait X {",
    "struct S { a: u8 }",
    "pub enum E { A }",
    "mod m {",
    "/// doc",
    "// c",
    "/* c */",
    "#[test]",
    "@dec",
    "func (r *R) M() {",
    "type T struct {",
    "package p",
    "import x",
    "public void m() {",
    "interface I {",
    "namespace n {",
    "template <typename T>",
    "#ifdef X",
    "#endif",
    "#define M 1",
    "export default class {",
    "const a = () => {",
    "function h() {",
    "return 1;",
    "x = 1",
    "# Heading",
    "## Sub ##",
    "===",
    "---",
    "~~~",
    "```",
    "= Adoc",
    "== Two",
    "Title",
    "é",
    "日本",
    "🚀",
    "\u{feff}",
    "\"",
    "'",
    "`",
    "\\",
    "'''",
    "\"\"\"",
    "<div>",
    "</div>",
    "...",
    "::",
];

fn random_text(rng: &mut Lcg) -> String {
    let n = rng.below(120);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
        if rng.below(3) == 0 {
            s.push(' ');
        }
        if rng.below(80) == 0 {
            s.push_str(&"z".repeat(rng.below(20_000)));
        }
    }
    s
}

#[test]
fn random_inputs_keep_invariants() {
    let mut rng = Lcg(0x5eed);
    for round in 0..150 {
        let text = random_text(&mut rng);
        let o = opts(rng.below(30) as u32, rng.below(8) as u32);
        for lang in Language::ALL {
            let chunks = run(lang, &text, &o);
            if !text.trim().is_empty() {
                assert!(
                    !chunks.is_empty(),
                    "round {round} {lang}: no chunk for non-blank text"
                );
            }
        }
    }
}

#[test]
fn random_mutations_of_fixtures_keep_invariants() {
    let fixtures = [
        (Language::Rust, RUST),
        (Language::Python, PYTHON),
        (Language::JavaScript, JAVASCRIPT),
        (Language::TypeScript, TYPESCRIPT),
        (Language::Tsx, TSX),
        (Language::Go, GO),
        (Language::Java, JAVA),
        (Language::C, C),
        (Language::Cpp, CPP),
        (Language::Markdown, MARKDOWN),
        (Language::Rst, RST),
        (Language::AsciiDoc, ASCIIDOC),
    ];
    let mut rng = Lcg(42);
    for (lang, text) in fixtures {
        for _ in 0..40 {
            // Delete, duplicate or truncate random char ranges.
            let mut t: Vec<char> = text.chars().collect();
            for _ in 0..rng.below(4) + 1 {
                let a = rng.below(t.len() + 1);
                let b = (a + rng.below(60)).min(t.len());
                match rng.below(3) {
                    0 => drop(t.drain(a..b)),
                    1 => {
                        let dup: Vec<char> = t[a..b].to_vec();
                        t.splice(a..a, dup);
                    }
                    _ => t.truncate(a),
                }
            }
            let t: String = t.into_iter().collect();
            let o = opts(rng.below(40) as u32 + 1, rng.below(6) as u32);
            run(lang, &t, &o);
        }
    }
}

#[test]
fn a_large_file_is_chunked_quickly() {
    // ~47k lines of Rust; the time bound is loose because tests run unoptimised.
    let mut text = String::new();
    for i in 0..2_500 {
        text.push_str(&format!(
            r#"/// Item {i}.
#[derive(Debug)]
pub struct S{i} {{
    a: u32,
}}

impl S{i} {{
    pub fn get(&self) -> u32 {{
        self.a + {i}
    }}
}}

fn f{i}(x: u32) -> u32 {{
    let y = x * 2;
    y + 1
}}

const C{i}: u32 = {i};

"#
        ));
    }
    let t0 = std::time::Instant::now();
    let chunks = run(Language::Rust, &text, &ChunkOptions::default());
    let took = t0.elapsed();
    assert!(took.as_secs() < 30, "took {took:?}");
    assert!(chunks.iter().any(|c| c.symbol.as_deref() == Some("S2499")));
    assert!(chunks.iter().any(|c| c.symbol.as_deref() == Some("f1234")));
}

#[test]
fn definitions_include_members_merged_into_one_chunk() {
    let text = "pub struct A;\n\nimpl A {\n    pub fn one(&self) {}\n    pub fn two(&self) {}\n}\n\nfn tiny() {}\n";
    let (chunks, defs) =
        super::chunk_file_with_definitions(Language::Rust, text, &ChunkOptions::default());
    let names: Vec<&str> = defs.iter().map(|d| d.symbol.as_str()).collect();
    assert!(
        chunks.len() < defs.len(),
        "small items are merged into fewer chunks: {chunks:?}"
    );
    for want in ["A", "one", "two", "tiny"] {
        assert!(
            names.iter().any(|n| n.ends_with(want)),
            "{want} missing from {names:?}"
        );
    }
}
