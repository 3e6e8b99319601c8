"""The website as readers get it: built with every chapter executed at the quick profile
and warnings as errors, then opened page by page in a headless Chromium.

The one build is shared by every test here. conftest.py puts this file last, so that the
chapters' notebook tests have run first: a chapter nbval executed whole and without error
is shown with the outputs it got there, and the build executes only the others. The browser is Debian's ``chromium`` driven by
Playwright. Where it is missing the browser tests skip, except in CI (``CI=true``), where
``.ci/run`` installs it and a missing browser is a failure.
"""

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

from tools import sync_book

ROOT = sync_book.ROOT
CHAPTERS = sync_book.chapters()
SCREENSHOTS = ROOT / "_build" / "screenshots"
SCREENSHOT_PAGES = {"book/intro", "book/cw/l2_attack", "book/ead/ista_fista", "book/instructors"}
# Sphinx's own pages, next to the book's.
EXTRA_PAGES = ["genindex", "search"]
# Chromium as root, offline, with nothing to sync or update in the background.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Jupyter Book 1 writes sphinx-thebe's settings script twice into every page; the second
# copy fails to redeclare them, which is harmless (the first copy has set them).
KNOWN_SCRIPT_ERRORS = ["Identifier 'THEBE_JS_URL' has already been declared"]
COLAB_LINK = '.dropdown-launch-buttons a[href^="https://colab.research.google.com/"]'
# Error output, told apart from what stderr rightly holds (tqdm bars, warnings): a cell
# that raised renders as `.output.traceback`, and an exception printed some other way
# (logged, or from a subprocess) leaves a traceback header or an "XxxError: ..." line.
# Warnings ("UserWarning: ...") and the word "error" in prose or tables are allowed.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*(\w+\.)*\w*(Error|Exception): ", re.M)
# TeX delimiters that MathJax would have replaced (dollarmath leaves none in the prose).
RAW_MATH = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{")


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc["parts"]:
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


PAGES = _toc_pages() + EXTRA_PAGES


def _chapters_run_by_nbval(cache_folder: Path) -> tuple[Path, int]:
    """A Jupyter cache of the chapters this test run's notebook tests have executed (see conftest.py),
    and a copy of the book's configuration that builds from it. Returns (configuration, chapters cached).

    The cache matches a chapter by its code cells, so a chapter whose source differs from
    what nbval ran, or that nbval has not run whole and without error, is executed by the
    build as usual.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(cache_folder)
    executed = sorted(Path(os.environ.get("EAD_TUTORIAL_EXECUTED_CHAPTERS", cache_folder)).glob("*.ipynb"))
    for path in executed:
        cache.cache_notebook_bundle(CacheBundleIn(nbformat.read(path, as_version=4), str(path)),
                                    check_validity=False, overwrite=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"] |= {"execute_notebooks": "cache", "cache": str(cache_folder)}
    path = cache_folder.parent / "_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, len(executed)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    """The site built as the README builds it (every chapter executed, quick profile), with warnings as errors.

    A chapter that this run's notebook tests executed whole is not executed again: the
    build shows the outputs nbval got. Run alone, this file executes every chapter.
    """
    out = tmp_path_factory.mktemp("site")
    config, cached = _chapters_run_by_nbval(out / "jupyter_cache")
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    command = [jupyter_book, "build", str(ROOT), "--config", str(config), "--path-output", str(out),
               "-W", "-n", "--keep-going"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "EAD_TUTORIAL_PROFILE": "quick"})
    assert done.returncode == 0, f"the website build failed or warned:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    print(f"{cached} of {len(CHAPTERS)} chapters shown from this run's notebook tests")
    return out / "_build" / "html"


def test_site_builds_without_warnings(built_site):
    for name in _toc_pages():
        assert (built_site / f"{name}.html").exists()


def test_the_browser_test_covers_every_page(built_site):
    """Every built page but the home page's redirect is in PAGES."""
    built = {str(page.relative_to(built_site).with_suffix("")) for page in built_site.rglob("*.html")
             if not page.relative_to(built_site).parts[0].startswith("_")}
    assert built - {"index"} == set(PAGES)


def test_colab_buttons_open_existing_twins(built_site):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/").rstrip("/")
    prefix = f"https://colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/"
    for source in CHAPTERS:
        page = built_site / source.relative_to(ROOT).with_suffix(".html")
        links = set(re.findall(r'https://colab\.research\.google\.com/[^"\']+', page.read_text()))
        assert links == {prefix + str(source.relative_to(ROOT).with_suffix(".ipynb"))}, links
        twin = ROOT / links.pop().removeprefix(prefix)
        assert twin.exists()
        nbformat.validate(nbformat.read(twin, as_version=4))


# --- In the browser ---------------------------------------------------------------


def _unavailable(reason: str):
    """Skip, or fail in CI, where the browser test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(reason)


def _mathjax_folder() -> Path | None:
    """A local copy of MathJax 3 (PyPI's django-static-mathjax), or None."""
    spec = importlib.util.find_spec("mathjax")
    folder = spec and spec.submodule_search_locations and Path(spec.submodule_search_locations[0]) / "static" / "mathjax"
    return folder if folder and (folder / "es5" / "tex-mml-chtml.js").exists() else None


def _offline(context, mathjax: Path | None) -> None:
    """Keep the browser on this machine: local pages load, MathJax's CDN is answered from
    the local copy, everything else (Colab, GitHub, fonts) is refused."""
    def route(route):
        url = route.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            return route.continue_()
        if mathjax and "/mathjax@3/" in url:
            file = mathjax / url.split("/mathjax@3/", 1)[1].split("?")[0]
            if file.is_file():
                return route.fulfill(path=file)
        return route.abort()

    context.route("**/*", route)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A Chromium page context with a fresh, empty profile."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _unavailable("Chromium is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -r requirements.txt)")
    mathjax = _mathjax_folder()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=chromium, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        _offline(context, mathjax)
        yield context
        context.close()


class _LocalServer(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url(built_site):
    """The built site, served over HTTP on localhost."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_LocalServer, directory=built_site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


class _Ids(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.ids = set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name in ("id", "name") and value)


@functools.cache
def _ids(page: Path) -> set[str]:
    """The anchors a link can point to in a built page."""
    return _Ids(page.read_text()).ids


def _broken_links(hrefs: list[str], site_url: str, built_site: Path) -> list[str]:
    """The links to this site whose file, or whose anchor in that file, does not exist."""
    broken = []
    for href in hrefs:
        if not href.startswith(site_url):
            continue
        parts = urlsplit(href)
        target = built_site / unquote(parts.path).removeprefix(urlsplit(site_url).path)
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} (no such file)")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target):
            broken.append(f"{href} (no such anchor)")
    return broken


# Everything the checks need from one loaded page, gathered in the browser.
PAGE_FACTS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await Promise.all([...document.images].map(img => {
    img.loading = "eager";
    return img.complete ? null : new Promise(done => { img.onload = img.onerror = done; });
  }));
  const prose = [];
  const walker = document.createTreeWalker(document.querySelector("main") || document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: node => node.parentElement.closest("pre, code, script, style, mjx-container, .cell_output")
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  while (walker.nextNode()) prose.push(walker.currentNode.textContent);
  return {
    outputs: [...document.querySelectorAll(".cell_output")].map(e => e.innerText),
    errorOutputs: document.querySelectorAll(".output.traceback").length,
    prose: prose.join(" "),
    math: document.querySelectorAll(".math").length,
    unrenderedMath: [...document.querySelectorAll(".math")].filter(e => !e.querySelector("mjx-container"))
      .map(e => e.textContent.slice(0, 80)),
    mathjax: document.querySelectorAll("mjx-container").length,
    mathErrors: [...document.querySelectorAll("mjx-merror")].map(e => e.getAttribute("data-mjx-error") || e.textContent),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    brokenImages: [...document.images].filter(img => !(img.complete && img.naturalWidth > 0))
      .map(img => img.currentSrc || img.src),
  };
}"""


def _page_problems(facts: dict, site_url: str, built_site: Path) -> list[str]:
    """What is wrong with a page, from the facts the browser gathered."""
    problems = []
    if facts["errorOutputs"]:
        problems.append(f"{facts['errorOutputs']} cell(s) show an error")
    problems += [f"an output shows an exception: {match.group(0).strip()!r}"
                 for text in facts["outputs"] for match in [TRACEBACK.search(text)] if match]
    prose = " ".join(facts["prose"].split())
    problems += [f"raw TeX in the text: ...{prose[max(m.start() - 60, 0):m.end() + 20]}..."
                 for m in list(RAW_MATH.finditer(prose))[:5]]
    if facts["math"] and not facts["mathjax"]:
        problems.append("MathJax rendered none of the page's equations (could it load? see requirements.txt)")
    problems += [f"equation not rendered: {text!r}" for text in facts["unrenderedMath"]]
    problems += [f"MathJax error: {error!r}" for error in facts["mathErrors"]]
    problems += [f"broken link: {link}" for link in _broken_links(facts["links"], site_url, built_site)]
    problems += [f"image did not load: {src}" for src in facts["brokenImages"]]
    return problems


def _launch_button_problems(page) -> list[str]:
    """A chapter's rocket button opens a menu with its Colab link."""
    from playwright.sync_api import TimeoutError

    button = page.locator(".dropdown-launch-buttons button")
    if button.count() != 1:
        return ["no launch (rocket) button"]
    button.click()
    try:
        page.locator(COLAB_LINK).wait_for(state="visible", timeout=5000)
    except TimeoutError:
        return ["the launch menu shows no Colab link"]
    return []


def test_home_page_opens_the_intro(browser, site_url):
    page = browser.new_page()
    page.goto(site_url)
    page.wait_for_url(f"{site_url}{_toc_pages()[0]}.html")
    page.close()


@pytest.mark.parametrize("name", PAGES)
def test_page_in_the_browser(browser, site_url, built_site, name):
    """No traceback, every equation typeset, every internal link and image good, the launch
    button on every chapter, and no failed request or script error."""
    page = browser.new_page()
    failures = []
    page.on("pageerror", lambda error: str(error) in KNOWN_SCRIPT_ERRORS or failures.append(f"script error: {error}"))
    page.on("requestfailed", lambda request: request.url.startswith(site_url)
            and failures.append(f"request failed: {request.url}"))
    page.on("response", lambda response: response.url.startswith(site_url) and response.status >= 400
            and failures.append(f"HTTP {response.status}: {response.url}"))
    page.goto(f"{site_url}{name}.html")
    facts = page.evaluate(PAGE_FACTS)
    if name in SCREENSHOT_PAGES:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name.replace('/', '_')}.png", full_page=True)
    if ROOT / f"{name}.md" in CHAPTERS:
        failures += _launch_button_problems(page)
    page.close()
    problems = failures + _page_problems(facts, site_url, built_site)
    assert not problems, f"{name}.html:\n" + "\n".join(problems)
