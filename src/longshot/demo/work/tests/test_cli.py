import contextlib
import io
import subprocess
import sys
import unittest

from wordkit.cli import main


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue()


class CliTest(unittest.TestCase):
    def test_slug(self):
        self.assertEqual(run("slug", "Hello,", "World!"), (0, "hello-world\n"))

    def test_count(self):
        self.assertEqual(run("count", "b a b"), (0, "2 b\n1 a\n"))

    def test_usage(self):
        self.assertEqual(run("shout", "x")[0], 2)

    def test_as_a_module(self):
        done = subprocess.run([sys.executable, "-m", "wordkit.cli", "snake", "parseHTTPResponse"],
                              capture_output=True, text=True, check=True)
        self.assertEqual(done.stdout, "parse_http_response\n")
