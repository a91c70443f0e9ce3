import unittest

from wordkit.truncate import truncate


class TruncateTest(unittest.TestCase):
    def test_fits(self):
        self.assertEqual(truncate("hello   world", 20), "hello world")

    def test_cut_at_a_word(self):
        self.assertEqual(truncate("the quick brown fox", 12), "the quick…")

    def test_one_long_word(self):
        self.assertEqual(truncate("supercalifragilistic", 5), "supe…")

    def test_custom_ellipsis(self):
        self.assertEqual(truncate("one two three four", 13, ellipsis="..."), "one two...")
