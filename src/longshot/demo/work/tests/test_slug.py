import unittest

from wordkit.slug import slugify


class SlugTest(unittest.TestCase):
    def test_basic(self):
        self.assertEqual(slugify("Hello, World!"), "hello-world")

    def test_runs_collapse(self):
        self.assertEqual(slugify("  a -- b__c  "), "a-b-c")

    def test_empty(self):
        self.assertEqual(slugify("!!!"), "")

    def test_max_length_no_trailing_dash(self):
        self.assertEqual(slugify("abc def ghi", max_length=4), "abc")
