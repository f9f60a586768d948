"""A minimal TAP writer shared by the Python test scripts."""


class Tap:
    def __init__(self):
        self.count = 0
        self.failed = False

    def check(self, ok, text):
        self.count += 1
        self.failed |= not ok
        print(f"{'ok' if ok else 'not ok'} {self.count} - {text}")
        return ok

    @staticmethod
    def note(text):
        for line in str(text).splitlines() or [""]:
            print("# " + line)

    def done(self):
        print(f"1..{self.count}")
        return 1 if self.failed else 0
