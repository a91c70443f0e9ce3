import unittest

from wordkit.case import camel_case, snake_case


class CaseTest(unittest.TestCase):
    def test_snake(self):
        self.assertEqual(snake_case("Hello World-again"), "hello_world_again")

    def test_snake_from_camel(self):
        self.assertEqual(snake_case("parseHTTPResponse"), "parse_http_response")

    def test_camel(self):
        self.assertEqual(camel_case("make it_work"), "makeItWork")
