import unittest

import wordkit


class ApiTest(unittest.TestCase):
    def test_exports(self):
        for name in ("slugify", "word_count", "top_words", "snake_case", "camel_case", "wrap"):
            self.assertIn(name, wordkit.__all__)
            self.assertTrue(callable(getattr(wordkit, name)))

    def test_round_trip(self):
        self.assertEqual(wordkit.slugify(wordkit.camel_case("hello big world")), "hellobigworld")
