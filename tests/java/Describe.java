/**
 * Test helper of apim-pki, shared by the other helpers in this folder (compiled together): an
 * exception and its causes on one line, for the helpers' {@code FAIL}/{@code SETUP} lines and
 * error messages. A cause whose message the top message already contains is left out.
 */
final class Describe {
    private Describe() {}

    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        sb.append(e.getClass().getName()).append(": ").append(e.getMessage());
        String top = String.valueOf(e.getMessage());
        Throwable cause = e.getCause();
        for (int depth = 0; cause != null && depth < 10; depth++) {
            String msg = cause.getMessage();
            if (msg == null || !top.contains(msg)) {
                sb.append("; caused by ").append(cause.getClass().getName()).append(": ")
                        .append(msg);
            }
            if (cause.getCause() == cause) {
                break;
            }
            cause = cause.getCause();
        }
        return sb.toString().replace('\r', ' ').replace('\n', ' ');
    }
}
